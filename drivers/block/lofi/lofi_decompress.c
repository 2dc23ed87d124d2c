// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel's decompressors for lofi's compressed image segments: see
 * lofi_decompress.h. Every function sleeps (allocation, or long runs of
 * decompression): process context only.
 */

#include <linux/errno.h>
#include <linux/limits.h>
#include <linux/lz4.h>
#include <linux/slab.h>
#include <linux/xz.h>
#include <linux/zlib.h>
#include <linux/zstd.h>

#include "lofi_decompress.h"

/*
 * The lzma payload of a segment (illumos lofiadm): 5 bytes of LZMA
 * properties (the lc/lp/pb byte and the dictionary size), the 8-byte
 * uncompressed size, then the raw LZMA1 range-coder stream.
 */
#define LOFI_LZMA_PROPS		5
#define LOFI_LZMA_HEADER	(LOFI_LZMA_PROPS + 8)
/* What xz_dec_microlzma_alloc() wants; unused in XZ_SINGLE mode. */
#define LOFI_LZMA_DICT		(1U << 23)

struct lofi_decomp {
	int codec;
	/* zlib: the stream, and its workspace (in strm.workspace). */
	struct z_stream_s strm;
	/* zstd: the context, in its workspace. */
	void *zstd_ws;
	zstd_dctx *zstd;
	/* lzma: the MicroLZMA decoder, single-call mode. */
	struct xz_dec_microlzma *xz;
};

/**
 * lofi_decomp_alloc() - a decompression context for @codec
 * @codec: an enum lofi_codec
 *
 * Return: the context, or NULL if @codec is unknown or memory is short.
 */
struct lofi_decomp *lofi_decomp_alloc(int codec)
{
	struct lofi_decomp *d = kzalloc(sizeof(*d), GFP_KERNEL);

	if (!d)
		return NULL;
	d->codec = codec;
	switch (codec) {
	case LOFI_CODEC_ZLIB:
		d->strm.workspace = kvmalloc(zlib_inflate_workspacesize(), GFP_KERNEL);
		if (!d->strm.workspace)
			goto fail;
		break;
	case LOFI_CODEC_LZMA:
		d->xz = xz_dec_microlzma_alloc(XZ_SINGLE, LOFI_LZMA_DICT);
		if (!d->xz)
			goto fail;
		break;
	case LOFI_CODEC_ZSTD: {
		size_t size = zstd_dctx_workspace_bound();

		d->zstd_ws = kvmalloc(size, GFP_KERNEL);
		if (!d->zstd_ws)
			goto fail;
		d->zstd = zstd_init_dctx(d->zstd_ws, size);
		if (!d->zstd)
			goto fail;
		break;
	}
	case LOFI_CODEC_LZ4:
		break;
	default:
		goto fail;
	}
	return d;
fail:
	lofi_decomp_free(d);
	return NULL;
}

/**
 * lofi_decomp_free() - frees a context of lofi_decomp_alloc()
 * @d: the context, or NULL
 */
void lofi_decomp_free(struct lofi_decomp *d)
{
	if (!d)
		return;
	kvfree(d->strm.workspace);
	kvfree(d->zstd_ws);
	/* Not NULL-safe, whatever its comment says. */
	if (d->xz)
		xz_dec_microlzma_end(d->xz);
	kfree(d);
}

static long lofi_inflate(struct lofi_decomp *d, u8 *src, size_t src_len,
			 u8 *dst, size_t dst_len)
{
	struct z_stream_s *strm = &d->strm;

	/* A zlib stream (RFC 1950): header and Adler-32 checked. */
	if (zlib_inflateInit2(strm, MAX_WBITS) != Z_OK)
		return -EIO;
	strm->next_in = src;
	strm->avail_in = src_len;
	strm->next_out = dst;
	strm->avail_out = dst_len;
	if (zlib_inflate(strm, Z_FINISH) != Z_STREAM_END)
		return -EIO;
	return strm->total_out;
}

static long lofi_unlzma(struct lofi_decomp *d, u8 *src, size_t src_len,
			u8 *dst, size_t dst_len)
{
	struct xz_buf b;
	u8 props;

	if (src_len <= LOFI_LZMA_HEADER)
		return -EIO;
	/*
	 * MicroLZMA is the raw stream with its first byte, which is always
	 * 0 in LZMA1, replaced by the bitwise negation of the properties
	 * byte: make it so in place. The dictionary size is not needed:
	 * the whole output is the dictionary (single-call mode).
	 */
	props = src[0];
	src[LOFI_LZMA_HEADER] = ~props;
	/*
	 * Not exact: decoding stops after dst_len bytes, whether or not an
	 * end-of-payload marker follows (illumos writes none, others do).
	 */
	xz_dec_microlzma_reset(d->xz, src_len - LOFI_LZMA_HEADER, dst_len, false);
	b.in = src + LOFI_LZMA_HEADER;
	b.in_pos = 0;
	b.in_size = src_len - LOFI_LZMA_HEADER;
	b.out = dst;
	b.out_pos = 0;
	b.out_size = dst_len;
	/*
	 * All input and all room are given at once: XZ_OK (no progress
	 * possible) then means the stream is truncated or corrupt.
	 */
	if (xz_dec_microlzma_run(d->xz, &b) != XZ_STREAM_END)
		return -EIO;
	return b.out_pos;
}

/**
 * lofi_decomp_run() - decompresses one segment's payload
 * @d: the context
 * @src: the payload, @src_len bytes (may be changed)
 * @dst: room for the output, @dst_len bytes
 *
 * Return: the bytes written to @dst, or -EIO for data that is corrupt,
 * truncated or longer than @dst_len.
 */
long lofi_decomp_run(struct lofi_decomp *d, u8 *src, size_t src_len,
		     u8 *dst, size_t dst_len)
{
	if (src_len > INT_MAX || dst_len > INT_MAX)
		return -EIO;
	switch (d->codec) {
	case LOFI_CODEC_ZLIB:
		return lofi_inflate(d, src, src_len, dst, dst_len);
	case LOFI_CODEC_LZMA:
		return lofi_unlzma(d, src, src_len, dst, dst_len);
	case LOFI_CODEC_ZSTD: {
		size_t n = zstd_decompress_dctx(d->zstd, dst, dst_len, src, src_len);

		return zstd_is_error(n) ? -EIO : (long)n;
	}
	case LOFI_CODEC_LZ4: {
		int n = LZ4_decompress_safe((const char *)src, (char *)dst,
					    src_len, dst_len);

		return n < 0 ? -EIO : n;
	}
	}
	return -EIO;
}
