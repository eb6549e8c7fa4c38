package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Where containerd listens in the distributions we know, relative to the host root.
var socketCandidates = []string{
	"run/containerd/containerd.sock",               // kubeadm, Canonical Kubernetes, most installs
	"run/k3s/containerd/containerd.sock",           // k3s, rke2
	"var/snap/microk8s/common/run/containerd.sock", // microk8s
	"run/k0s/containerd.sock",                      // k0s
}

const (
	pinnedLabel  = "io.cri-containerd.pinned"
	managedLabel = "io.cri-containerd.image"
	// importedLabel marks an image Prepull imported; its value is the image's name.
	importedLabel = "prepull.dev/imported"
	// ownerLabel says for whom (--owner): another owner's import is not replaced.
	ownerLabel = "prepull.dev/owner"
)

var errArchiveTooLarge = errors.New("archive too large")

func importImage(ctx context.Context, o options, r *result) error {
	if o.image == "" {
		return fail(ReasonImportFailed, "--image is required")
	}
	wantDigest, err := pinnedDigest(o.image)
	if err != nil {
		return err
	}
	platform := platforms.DefaultSpec()
	if o.platform != "" {
		p, err := platforms.Parse(o.platform)
		if err != nil {
			return fail(ReasonImportFailed, "bad --platform %q: %v", o.platform, err)
		}
		platform = p
	}
	r.Platform = platforms.Format(platform)

	address, err := findSocket(o)
	if err != nil {
		return err
	}
	r.Socket = address

	source, closeSource, err := openSource(ctx, o)
	if err != nil {
		return err
	}
	defer closeSource()

	client, err := containerd.New(address, containerd.WithDefaultNamespace(o.namespace), containerd.WithTimeout(30*time.Second))
	if err != nil {
		return fail(ReasonRuntimeNotFound, "connecting to containerd at %s: %v", address, err)
	}
	defer client.Close()

	// The blobs go into the content store under a lease, so that what no image
	// ends up referencing (other images of the archive, a refused import) is
	// garbage collected. No image is created from the archive's own names:
	// client.Import would, and so replace any image the archive claims to be.
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return fail(ReasonImportFailed, "taking a lease: %v", err)
	}
	defer func() { _ = done(context.WithoutCancel(ctx)) }()
	cs := client.ContentStore()
	limited := &cappedReader{r: source, left: o.maxArchiveBytes}
	index, err := archive.ImportIndex(ctx, cs, limited)
	if err != nil {
		if limited.exceeded {
			return fail(ReasonArchiveTooLarge, "the archive is larger than the limit of %d bytes", o.maxArchiveBytes)
		}
		return fail(ReasonImportFailed, "importing the archive: %v", err)
	}
	matcher := platforms.OnlyStrict(platform)
	target, err := chooseTarget(ctx, cs, index, o.image, wantDigest, matcher)
	if err != nil {
		return err
	}
	if wantDigest != "" && target.Digest != wantDigest {
		return fail(ReasonDigestMismatch, "%s names digest %s, but the archive's image is %s", o.image, wantDigest, target.Digest)
	}
	// What the image references must carry GC labels, this platform only.
	if err := images.Walk(ctx, images.SetChildrenLabels(cs, images.FilterPlatforms(childrenSkippingMissing(cs), matcher)), target); err != nil {
		return fail(ReasonImportFailed, "reading the archive's image: %v", err)
	}

	stored, err := nameImage(ctx, client.ImageService(), o, target)
	if err != nil {
		return err
	}
	image := containerd.NewImageWithPlatform(client, stored, matcher)
	if err := image.Unpack(ctx, o.snapshotter); err != nil {
		if strings.Contains(err.Error(), "no match for platform") || errdefs.IsNotFound(err) {
			return fail(ReasonPlatformMismatch, "the archive has no %s image for %s: %v", r.Platform, o.image, err)
		}
		return fail(ReasonImportFailed, "unpacking: %v", err)
	}
	unpacked, err := image.IsUnpacked(ctx, o.snapshotter)
	if err != nil || !unpacked {
		return fail(ReasonImportFailed, "the image is not unpacked for %s after the import (%v)", o.snapshotter, err)
	}
	r.Digest = stored.Target.Digest.String()
	return nil
}

// nameImage gives target the name --image, unless that replaces something
// Prepull does not own: an image of that name that Prepull did not import, or
// imported for another owner, stays as it is (ImportConflict), unless it has
// the same content already, which is then left untouched and counts as done.
func nameImage(ctx context.Context, is images.Store, o options, target ocispec.Descriptor) (images.Image, error) {
	labels := map[string]string{pinnedLabel: "pinned", managedLabel: "managed", importedLabel: o.image}
	if o.owner != "" {
		labels[ownerLabel] = o.owner
	}
	img := images.Image{Name: o.image, Target: target, Labels: labels}
	existing, err := is.Get(ctx, o.image)
	switch {
	case errdefs.IsNotFound(err):
		created, err := is.Create(ctx, img)
		if err != nil {
			if errdefs.IsAlreadyExists(err) {
				return images.Image{}, fail(ReasonImportConflict, "%s appeared in containerd during the import; not replaced", o.image)
			}
			return images.Image{}, fail(ReasonImportFailed, "naming the image: %v", err)
		}
		return created, nil
	case err != nil:
		return images.Image{}, fail(ReasonImportFailed, "reading the image %s: %v", o.image, err)
	}
	ours := existing.Labels[importedLabel] == o.image
	sameOwner := existing.Labels[ownerLabel] == "" || existing.Labels[ownerLabel] == o.owner
	if existing.Target.Digest == target.Digest {
		if !ours {
			return existing, nil
		}
	} else if !ours {
		return images.Image{}, fail(ReasonImportConflict, "%s is already in containerd as %s and was not imported by Prepull; it is not replaced", o.image, existing.Target.Digest)
	} else if !sameOwner {
		return images.Image{}, fail(ReasonImportConflict, "%s is already in containerd as %s, imported by Prepull for another owner; it is not replaced", o.image, existing.Target.Digest)
	}
	fields := []string{"target"}
	for k := range labels {
		fields = append(fields, "labels."+k)
	}
	updated, err := is.Update(ctx, img, fields...)
	if err != nil {
		return images.Image{}, fail(ReasonImportFailed, "naming the image: %v", err)
	}
	return updated, nil
}

// pinnedDigest gives the digest a name@sha256:… pins, or "" for a tag.
func pinnedDigest(image string) (digest.Digest, error) {
	_, pinned, found := strings.Cut(image, "@")
	if !found {
		return "", nil
	}
	d, err := digest.Parse(pinned)
	if err != nil {
		return "", fail(ReasonImportFailed, "%s: bad digest: %v", image, err)
	}
	return d, nil
}

// chooseTarget finds the image the caller asked for in the archive's index:
// the manifest of that digest when the name pins one, else the one named so,
// else the archive's only named image, else its only image.
func chooseTarget(ctx context.Context, cs content.Store, index ocispec.Descriptor, want string, wantDigest digest.Digest, matcher platforms.Matcher) (ocispec.Descriptor, error) {
	manifests, otherPlatforms, err := indexManifests(ctx, cs, index, matcher)
	if err != nil {
		return ocispec.Descriptor{}, fail(ReasonImportFailed, "reading the archive's index: %v", err)
	}
	if len(manifests) == 0 && otherPlatforms > 0 {
		return ocispec.Descriptor{}, fail(ReasonPlatformMismatch, "the archive has no image for this node's platform, only %d for others", otherPlatforms)
	}
	if len(manifests) == 0 {
		return ocispec.Descriptor{}, fail(ReasonImageNotInArchive, "the archive holds no image")
	}
	var named []ocispec.Descriptor
	var names []string
	for _, m := range manifests {
		if wantDigest != "" && m.Digest == wantDigest {
			return m, nil
		}
		name := archiveName(m.Annotations)
		if name == want {
			return m, nil
		}
		if name != "" && !strings.HasPrefix(name, "sha256:") {
			named = append(named, m)
			names = append(names, name)
		}
	}
	switch {
	case len(named) == 1:
		return named[0], nil
	case len(named) > 1:
		return ocispec.Descriptor{}, fail(ReasonImageNotInArchive, "%s is not in the archive, which holds %s", want, strings.Join(names, ", "))
	case len(manifests) == 1:
		// Unnamed: an archive with one image (or one multi-platform index) is that image.
		return manifests[0], nil
	default:
		return ocispec.Descriptor{}, fail(ReasonImageNotInArchive, "the archive holds %d unnamed images; cannot tell which is %s", len(manifests), want)
	}
}

// indexManifests lists the images of an archive's index: those for this
// platform, when the index says which platform each is for.
func indexManifests(ctx context.Context, cs content.Store, index ocispec.Descriptor, matcher platforms.Matcher) ([]ocispec.Descriptor, int, error) {
	blob, err := content.ReadBlob(ctx, cs, index)
	if err != nil {
		return nil, 0, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(blob, &idx); err != nil {
		return nil, 0, err
	}
	var out []ocispec.Descriptor
	otherPlatforms := 0
	for _, m := range idx.Manifests {
		// Referrers (signatures, attestations) are not images.
		if _, ok := m.Annotations[images.AnnotationManifestSubject]; ok {
			continue
		}
		if m.Platform != nil && !matcher.Match(*m.Platform) {
			otherPlatforms++
			continue
		}
		out = append(out, m)
	}
	return out, otherPlatforms, nil
}

// archiveName is the name an archive gives a manifest, as containerd reads it.
func archiveName(annotations map[string]string) string {
	if name := annotations[images.AnnotationImageName]; name != "" {
		return name
	}
	return annotations[ocispec.AnnotationRefName]
}

// childrenSkippingMissing walks what is in the content store and skips the
// rest (the other platforms' blobs an export may leave out).
func childrenSkippingMissing(cs content.Store) images.HandlerFunc {
	children := images.ChildrenHandler(cs)
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		out, err := children(ctx, desc)
		if errdefs.IsNotFound(err) {
			return nil, images.ErrSkipDesc
		}
		return out, err
	}
}

// cappedReader fails once more than left bytes were read.
type cappedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a stream that ends exactly at the cap from a longer one.
		var probe [1]byte
		n, err := c.r.Read(probe[:])
		if n > 0 {
			c.exceeded = true
			return 0, errArchiveTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func findSocket(o options) (string, error) {
	if o.address != "" {
		if _, err := os.Stat(o.address); err != nil {
			return "", fail(ReasonRuntimeNotFound, "containerd socket %s: %v", o.address, err)
		}
		return o.address, nil
	}
	for _, c := range socketCandidates {
		p := filepath.Join(o.hostRoot, c)
		if st, err := os.Stat(p); err == nil && st.Mode()&os.ModeSocket != 0 {
			return p, nil
		}
	}
	return "", fail(ReasonRuntimeNotFound, "no containerd socket found under %s (looked for %s); set the socket explicitly", o.hostRoot, strings.Join(socketCandidates, ", "))
}
