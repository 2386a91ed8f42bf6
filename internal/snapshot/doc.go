// Package snapshot keeps image layers unpacked, each once, in a directory named by its chain ID,
// and assembles container root filesystems from them: with overlayfs (the layers as lower
// directories, whiteouts kept as overlay markers) or, where overlayfs cannot be used, by copying
// the layers bottom-up into a directory and applying their whiteouts.
//
// Layers are unpacked into a private temporary directory and renamed into place whole, so a crash
// leaves at most a temporary directory that the next New removes, and two processes unpacking the
// same layer both succeed (the second's copy is dropped). It does not fetch or verify images; it
// is handed a provider and the layers (internal/image).
package snapshot
