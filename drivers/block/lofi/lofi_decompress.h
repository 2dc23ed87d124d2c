/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's decompressors behind one small interface, for the
 * segments of lofi's compressed images (see kext/decompress.rs, the only
 * user). Their headers are not in the Rust bindings, and each wants its
 * own state juggled (a z_stream, a zstd context, an xz decoder): that is
 * done here, in C, so that the Rust side sees one opaque context.
 */
#ifndef LOFI_DECOMPRESS_H
#define LOFI_DECOMPRESS_H

#include <linux/types.h>

/* The codecs; the values are lofi's own, not an ABI. */
enum lofi_codec {
	LOFI_CODEC_ZLIB = 1,
	LOFI_CODEC_LZMA = 2,
	LOFI_CODEC_ZSTD = 3,
	LOFI_CODEC_LZ4 = 4,
};

struct lofi_decomp;

struct lofi_decomp *lofi_decomp_alloc(int codec);
void lofi_decomp_free(struct lofi_decomp *d);
long lofi_decomp_run(struct lofi_decomp *d, u8 *src, size_t src_len,
		     u8 *dst, size_t dst_len);

#endif /* LOFI_DECOMPRESS_H */
