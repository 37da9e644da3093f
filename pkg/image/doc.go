// Package image pulls the tool images that ephem's debug containers run,
// and keeps them unpacked in a content-addressed cache on local disk.
//
// A Store owns one cache directory:
//
//	<dir>/layers/sha256/<diffID>/fs     unpacked layer tree (an overlayfs lowerdir)
//	<dir>/layers/sha256/<diffID>/.done  completion marker, written before the rename
//	<dir>/layers/sha256/<diffID>.lock   flock serialising unpacking and pinning the layer
//	<dir>/manifests/sha256/<digest>.json config and layer list of one image
//	<dir>/refs/<key>.json               normalized reference (and platform) → manifest digest
//	<dir>/records.lock                  flock keeping Prune from racing pulls' record writes
//	<dir>/tmp/                          work in progress, each entry flocked by its owner
//	<dir>/run/                          empty; the local engine mounts a private tmpfs on it
//
// Each layer is downloaded and unpacked once, into tmp/, verified against
// both its compressed digest and its diffID, and renamed into layers/ only
// when complete, so a run killed at any point leaves only tmp/ debris, which
// GC, Prune and Open remove. Whiteouts are written in overlayfs format
// (character device 0/0 and the trusted.overlay.opaque xattr), so the
// layers are mounted as lowerdirs without copying.
//
// Layers returned by Ensure stay pinned by a shared flock until the Store is
// closed or its process ends, so Prune never removes the lowerdirs of a
// running debug container.
//
// Store.Ensure resolves a reference under a PullPolicy and returns the
// unpacked Image; with PullMissing and a cached reference it reads two
// small JSON files and stats one marker per layer, with no network access.
package image
