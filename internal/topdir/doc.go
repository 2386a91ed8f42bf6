// Package topdir marks a directory as the top of directory hierarchies for ext4's Orlov allocator
// (FS_TOPDIR_FL, chattr +T), so that the trees made under it are spread over the block groups instead
// of packed beside it. It is an allocation hint only: where a filesystem has no such flag nothing
// changes.
//
// Why berth needs it: trees are often deleted and made again in the same place (a bundle's rootfs,
// a layer being unpacked). ext4 puts new inodes in their parent's block group, which is where the
// old tree's were just freed, and without a journal (as on these machines' root filesystem) it will
// not reuse an inode freed in the last minute or more: every allocation then scans past each of
// them, quadratic in the number of files. A child of a top directory is placed from a start hashed
// from its name, so a child with a random name lands in a block group chosen afresh.
package topdir
