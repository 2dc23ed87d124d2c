/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prints what the C compiler makes of include/uapi/linux/lofi.h, one fact
 * per line, for tests/uapi_header.rs to compare with lofiadm's Rust
 * mirror (src/uapi.rs). Built by that test with -I include/uapi.
 */
#include <stddef.h>
#include <stdio.h>
#include <linux/lofi.h>

#define FIELD(f)                                                        \
	printf("field %s %zu %zu\n", #f, offsetof(struct lofi_ioctl, f), \
	       sizeof(((struct lofi_ioctl *)0)->f))
/* "0x%lx", not "%#lx": the same text as Rust's {:#x} for 0 too. */
#define CONST(c) printf("const %s 0x%lx\n", #c, (unsigned long)(c))
#define STRING(s) printf("string %s %s\n", #s, s)

int main(void)
{
	printf("size lofi_ioctl %zu\n", sizeof(struct lofi_ioctl));
	printf("align lofi_ioctl %zu\n", (size_t)__alignof__(struct lofi_ioctl));
	FIELD(li_minor);
	FIELD(li_force);
	FIELD(li_cleanup);
	FIELD(li_readonly);
	FIELD(li_flags);
	FIELD(li_block_size);
	FIELD(li_offset);
	FIELD(li_sizelimit);
	FIELD(li_filename);
	FIELD(li_devpath);
	FIELD(li_algorithm);
	FIELD(li_reserved);
	CONST(LOFI_PATH_LEN);
	CONST(LOFI_DEVPATH_LEN);
	CONST(LOFI_ALGORITHM_LEN);
	CONST(LOFI_RESERVED_WORDS);
	CONST(LOFI_FLAG_DIRECT_IO);
	CONST(LOFI_FLAG_LABELED);
	CONST(LOFI_FLAGS_KNOWN);
	CONST(LOFI_BLOCK_SIZE_DEFAULT);
	CONST(LOFI_IOC_MAGIC);
	CONST(LOFI_MAX_FILES_DEFAULT);
	CONST(LOFI_MAP_FILE);
	CONST(LOFI_MAP_FILE_MINOR);
	CONST(LOFI_UNMAP_FILE);
	CONST(LOFI_UNMAP_FILE_MINOR);
	CONST(LOFI_GET_FILENAME);
	CONST(LOFI_GET_MINOR);
	CONST(LOFI_GET_MAXMINOR);
	CONST(LOFI_CHECK_COMPRESSED);
	CONST(LOFI_SET_CAPACITY);
	CONST(LOFI_DKIOCSTATE);
	CONST(LOFI_DKIO_NONE);
	CONST(LOFI_DKIO_EJECTED);
	CONST(LOFI_DKIO_INSERTED);
	CONST(LOFI_DKIO_DEV_GONE);
	STRING(LOFI_CTL_NAME);
	STRING(LOFI_BLOCK_DIR);
	return 0;
}
