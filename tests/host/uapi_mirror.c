// SPDX-License-Identifier: GPL-2.0
/*
 * Prints, from the C header, the lines that drivers/block/lofi/uapi.rs
 * must contain verbatim: the layout assertions of struct lofi_ioctl (its
 * size and the offset of every field), the array sizes and limits, and the
 * command and state constants. tests/host-checks.sh compares them, for a
 * 64-bit and a 32-bit build of this program (which must agree: the ABI has
 * one layout for both).
 */
#include <linux/lofi.h>
#include <stddef.h>
#include <stdio.h>

#define OFFSET(field) \
	printf("const _: () = assert!(core::mem::offset_of!(LofiIoctl, %s) == %zu);\n", \
	       #field, offsetof(struct lofi_ioctl, field))
#define LENGTH(name) \
	printf("pub(crate) const %s: usize = %u;\n", #name, (unsigned int)(name))
#define NUMBER(name) \
	printf("pub(crate) const %s: u32 = %u;\n", #name, (unsigned int)(name))
#define CONSTANT(name) \
	printf("pub(crate) const %s: u32 = %#x;\n", #name, (unsigned int)(name))

int main(void)
{
	printf("const _: () = assert!(core::mem::size_of::<LofiIoctl>() == %zu);\n",
	       sizeof(struct lofi_ioctl));
	OFFSET(li_minor);
	OFFSET(li_force);
	OFFSET(li_cleanup);
	OFFSET(li_readonly);
	OFFSET(li_flags);
	OFFSET(li_block_size);
	OFFSET(li_offset);
	OFFSET(li_sizelimit);
	OFFSET(li_filename);
	OFFSET(li_devpath);
	OFFSET(li_algorithm);
	OFFSET(li_reserved);
	LENGTH(LOFI_PATH_LEN);
	LENGTH(LOFI_DEVPATH_LEN);
	LENGTH(LOFI_ALGORITHM_LEN);
	LENGTH(LOFI_RESERVED_WORDS);
	CONSTANT(LOFI_FLAG_DIRECT_IO);
	CONSTANT(LOFI_FLAGS_KNOWN);
	NUMBER(LOFI_BLOCK_SIZE_DEFAULT);
	CONSTANT(LOFI_MAP_FILE);
	CONSTANT(LOFI_MAP_FILE_MINOR);
	CONSTANT(LOFI_UNMAP_FILE);
	CONSTANT(LOFI_UNMAP_FILE_MINOR);
	CONSTANT(LOFI_GET_FILENAME);
	CONSTANT(LOFI_GET_MINOR);
	CONSTANT(LOFI_GET_MAXMINOR);
	CONSTANT(LOFI_CHECK_COMPRESSED);
	CONSTANT(LOFI_SET_CAPACITY);
	CONSTANT(LOFI_DKIOCSTATE);
	CONSTANT(LOFI_DKIO_INSERTED);
	CONSTANT(LOFI_DKIO_DEV_GONE);
	return 0;
}
