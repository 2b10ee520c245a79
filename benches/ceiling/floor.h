/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Counter slots shared by floor.bpf.c and floor.c. */
#ifndef SYSHUB_FLOOR_H
#define SYSHUB_FLOOR_H

enum floor_slot {
	FLOOR_GETPPID_ENTER,
	FLOOR_GETPPID_EXIT,
	FLOOR_OPENAT_ENTER,
	FLOOR_OPENAT_EXIT,
	/* openat paths whose read failed (the floor must really read them) */
	FLOOR_PATH_FAULTS,
	FLOOR_SLOTS,
};

/* Bytes of the path read per openat, as syshub's default string capture. */
#define FLOOR_PATH_MAX 256

#endif /* SYSHUB_FLOOR_H */
