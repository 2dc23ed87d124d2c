// SPDX-License-Identifier: GPL-2.0
/*
 * Prints, from the C header, the lines that drivers/block/lofi/uapi.rs
 * must contain verbatim: the layout assertions of struct lofi_ioctl and
 * the command and state constants. tests/host-checks.sh compares them, for
 * a 64-bit and a 32-bit build of this program (which must agree: the ABI
 * has one layout for both).
 */
#include <linux/lofi.h>
#include <stddef.h>
#include <stdio.h>

#define OFFSET(field) \
	printf("const _: () = assert!(core::mem::offset_of!(LofiIoctl, %s) == %zu);\n", \
	       #field, offsetof(struct lofi_ioctl, field))
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
	OFFSET(li_filename);
	OFFSET(li_devpath);
	OFFSET(li_algorithm);
	OFFSET(li_reserved);
	printf("pub(crate) const PATH_MAX: usize = %d;\n", PATH_MAX);
	printf("pub(crate) const LOFI_ALGORITHM_LEN: usize = %d;\n", LOFI_ALGORITHM_LEN);
	CONSTANT(LOFI_MAP_FILE);
	CONSTANT(LOFI_MAP_FILE_MINOR);
	CONSTANT(LOFI_UNMAP_FILE);
	CONSTANT(LOFI_UNMAP_FILE_MINOR);
	CONSTANT(LOFI_GET_FILENAME);
	CONSTANT(LOFI_GET_MINOR);
	CONSTANT(LOFI_GET_MAXMINOR);
	CONSTANT(LOFI_CHECK_COMPRESSED);
	CONSTANT(DKIOCSTATE);
	CONSTANT(DKIO_INSERTED);
	CONSTANT(DKIO_DEV_GONE);
	return 0;
}
