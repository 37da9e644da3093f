package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// maxArchiveConfig bounds the image config read from a docker-archive
// tarball to name its layers' diffIDs.
const maxArchiveConfig = 8 << 20

// dataErr classifies an error from reading src's image data. A local
// source's failures are corrupt or missing local data, never the network's:
// a missing file's ENOENT is a syscall.Errno, which is a net.Error.
func (src *source) dataErr(err error) error {
	if src.origin == "" {
		return dataErr(err)
	}
	if hasSentinel(err) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: reading %s: %w", ErrCorrupt, src.origin, err)
}

// resolveLayout finds ref's image in an OCI image layout.
func resolveLayout(ref Reference, platform v1.Platform) (*source, error) {
	p, err := layout.FromPath(ref.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no OCI image layout at %s (expected a directory with index.json)", ErrNotFound, ref.path)
		}
		return nil, fmt.Errorf("%w: reading OCI layout %s: %w", ErrCorrupt, ref.path, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("%w: reading OCI layout %s: %w", ErrCorrupt, ref.path, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%w: reading OCI layout %s: %w", ErrCorrupt, ref.path, err)
	}
	d, err := layoutMatch(ref, im)
	if err != nil {
		return nil, err
	}
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, layoutErr(ref.path, "the index", d.Digest, err)
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, layoutErr(ref.path, "the index", d.Digest, err)
		}
		if d, err = pickPlatform(cm, platform); err != nil {
			return nil, err
		}
		idx = child
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, layoutErr(ref.path, "the manifest", d.Digest, err)
	}
	if err := checkLayoutImage(ref.path, d.Digest, img); err != nil {
		return nil, err
	}
	return &source{img: img, digest: d.Digest, compressed: true, origin: "OCI layout " + ref.path}, nil
}

// layoutMatch returns the descriptor of the image or index ref names in the
// layout's index im.
func layoutMatch(ref Reference, im *v1.IndexManifest) (v1.Descriptor, error) {
	var match []v1.Descriptor
	var tags []string
	for _, d := range im.Manifests {
		t := d.Annotations[refNameAnnotation]
		if t != "" {
			tags = append(tags, t)
		}
		if ref.tag == "" || t == ref.tag {
			match = append(match, d)
		}
	}
	switch {
	case len(match) == 0 && ref.tag != "":
		return v1.Descriptor{}, fmt.Errorf("%w: tag %q not in OCI layout %s (tags: %s)", ErrNotFound, ref.tag, ref.path, strings.Join(tags, ", "))
	case len(match) == 0:
		return v1.Descriptor{}, fmt.Errorf("%w: OCI layout %s holds no image", ErrNotFound, ref.path)
	case len(match) > 1:
		return v1.Descriptor{}, fmt.Errorf("%w: OCI layout %s holds %d images; name one as oci:%s:TAG (tags: %s)",
			ErrInvalidReference, ref.path, len(match), ref.path, strings.Join(tags, ", "))
	}
	return match[0], nil
}

// checkLayoutImage makes sure that the manifest (digest d), the config and
// every layer of img, an image of the OCI layout at dir, are there, so that
// an incomplete layout is reported before anything is unpacked.
func checkLayoutImage(dir string, d v1.Hash, img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return layoutErr(dir, "the manifest", d, err)
	}
	if err := layoutHas(dir, "the config", m.Config.Digest); err != nil {
		return err
	}
	for i, l := range m.Layers {
		if err := layoutHas(dir, fmt.Sprintf("layer %d of %d", i+1, len(m.Layers)), l.Digest); err != nil {
			return err
		}
	}
	return nil
}

// layoutHas checks that blob h, which holds what, is in the layout at dir.
func layoutHas(dir, what string, h v1.Hash) error {
	if _, err := os.Stat(filepath.Join(dir, "blobs", h.Algorithm, h.Hex)); err != nil {
		return layoutErr(dir, what, h, err)
	}
	return nil
}

// layoutErr reports that blob h, which holds what, of the OCI layout at dir
// is missing or unreadable: local data, wrapped with ErrCorrupt.
func layoutErr(dir, what string, h v1.Hash, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: OCI layout %s is incomplete: %s, blob %s, is missing: %w", ErrCorrupt, dir, what, h, err)
	}
	return fmt.Errorf("%w: reading %s, blob %s, of OCI layout %s: %w", ErrCorrupt, what, h, dir, err)
}

// resolveArchive opens ref's image in a `docker save` tarball.
func resolveArchive(ref Reference) (*source, error) {
	file, tagStr := ref.path, ref.tag
	// A colon may belong to the file name: prefer the whole text when it
	// names a file.
	if tagStr != "" {
		if fi, err := os.Stat(ref.raw); err == nil && fi.Mode().IsRegular() {
			file, tagStr = ref.raw, ""
		}
	}
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("%w: opening archive: %w", ErrNotFound, err)
	}
	var tag *name.Tag
	if tagStr != "" {
		t, err := name.NewTag(tagStr)
		if err != nil {
			return nil, fmt.Errorf("%w: archive tag %q: %w", ErrInvalidReference, tagStr, err)
		}
		tag = &t
	}
	if err := checkArchive(file, tag); err != nil {
		return nil, err
	}
	img, err := tarball.ImageFromPath(file, tag)
	if err != nil {
		switch {
		case tag != nil && strings.Contains(err.Error(), "not found in tarball"):
			return nil, fmt.Errorf("%w: %s: %w", ErrNotFound, file, err)
		case strings.Contains(err.Error(), "must contain only a single image"):
			return nil, fmt.Errorf("%w: %s holds several images; name one as %s%s:REPO:TAG", ErrInvalidReference, file, ArchivePrefix, file)
		}
		return nil, fmt.Errorf("%w: reading docker archive %s: %w", ErrCorrupt, file, err)
	}
	d, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("%w: reading docker archive %s: %w", ErrCorrupt, file, err)
	}
	return &source{img: img, digest: d, origin: "docker archive " + file}, nil
}

// checkArchive makes sure that the docker-archive tarball file holds the
// config and every layer of the image tag names (the only one if tag is
// nil), naming what is missing. What it cannot judge (no manifest.json, no
// such tag) it leaves to tarball.ImageFromPath to report.
func checkArchive(file string, tag *name.Tag) error {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) }) //nolint:gosec // the user's archive
	if err != nil {
		return nil
	}
	d := archiveImage(m, tag)
	if d == nil {
		return nil
	}
	names, cfg, err := scanArchive(file, d.Config)
	if err != nil {
		return fmt.Errorf("%w: reading docker archive %s: %w", ErrCorrupt, file, err)
	}
	if !names[path.Clean(d.Config)] {
		return fmt.Errorf("%w: docker archive %s is incomplete: the image config %s is missing", ErrCorrupt, file, d.Config)
	}
	var diffIDs []v1.Hash
	if cf, err := v1.ParseConfigFile(bytes.NewReader(cfg)); err == nil {
		diffIDs = cf.RootFS.DiffIDs
	}
	for i, l := range d.Layers {
		if names[path.Clean(l)] {
			continue
		}
		id := "diffID unknown"
		if i < len(diffIDs) {
			id = "diffID " + diffIDs[i].String()
		}
		return fmt.Errorf("%w: docker archive %s is incomplete: layer %d of %d (%s) is missing: it has no file %s",
			ErrCorrupt, file, i+1, len(d.Layers), id, l)
	}
	return nil
}

// archiveImage returns the descriptor of the image tag names in the
// archive's manifest m (the only one if tag is nil), or nil.
func archiveImage(m tarball.Manifest, tag *name.Tag) *tarball.Descriptor {
	if tag == nil {
		if len(m) != 1 {
			return nil
		}
		return &m[0]
	}
	for i, d := range m {
		for _, rt := range d.RepoTags {
			if t, err := name.NewTag(rt); err == nil && t.Name() == tag.Name() {
				return &m[i]
			}
		}
	}
	return nil
}

// scanArchive lists the entries of the tarball file (cleaned names) and
// returns the content of the regular file config, if it is one.
func scanArchive(file, config string) (map[string]bool, []byte, error) {
	f, err := os.Open(file) //nolint:gosec // the user's archive
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = f.Close() }()
	names := map[string]bool{}
	var cfg []byte
	tr := tar.NewReader(f) // skips entry data by seeking
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, cfg, nil
		}
		if err != nil {
			return nil, nil, err
		}
		names[path.Clean(h.Name)] = true
		if path.Clean(h.Name) == path.Clean(config) && h.Typeflag == tar.TypeReg && h.Size <= maxArchiveConfig {
			if cfg, err = io.ReadAll(tr); err != nil {
				return nil, nil, err
			}
		}
	}
}
