// prepull-import puts one image from an archive into the node's containerd,
// in the namespace the kubelet uses (k8s.io), the way a pull would have:
//
//   - for this node's platform only, so multi-platform archives whose other
//     platforms' blobs are missing import fine;
//   - under the name the PrePulledImage asks for, whatever the archive calls
//     it (an unnamed OCI archive included: ctr's --base-name would silently
//     import nothing there);
//   - unpacked for the CRI's snapshotter, checked to exist afterwards, and
//     pinned (io.cri-containerd.pinned) so kubelet image GC keeps it.
//
// It uses containerd's own client library rather than running ctr: one
// static binary, the same code path as `ctr images import --local` (so it
// works against containerd 1.6, 1.7 and 2.x, none of which need the transfer
// service), and errors it can classify. The outcome is one JSON line, written
// to stdout and to --result (the pod's termination message), with a reason a
// PrePulledImage's status can carry: DownloadFailed, ChecksumMismatch,
// ImportFailed, ImageNotInArchive, PlatformMismatch, RuntimeNotFound.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
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
)

type result struct {
	OK       bool   `json:"ok"`
	Image    string `json:"image"`
	Digest   string `json:"digest,omitempty"`
	Platform string `json:"platform,omitempty"`
	Socket   string `json:"socket,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
}

type failure struct {
	reason string
	err    error
}

func (f *failure) Error() string { return f.err.Error() }

func fail(reason string, format string, args ...any) error {
	return &failure{reason: reason, err: fmt.Errorf(format, args...)}
}

type options struct {
	address     string
	hostRoot    string
	namespace   string
	archive     string
	url         string
	sha256      string
	image       string
	platform    string
	snapshotter string
	workDir     string
	resultPath  string
	exitZero    bool
	timeout     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.address, "address", "", "containerd socket (default: detected under --host-root)")
	flag.StringVar(&o.hostRoot, "host-root", "/host", "where the node's root filesystem is mounted, for socket detection")
	flag.StringVar(&o.namespace, "namespace", "k8s.io", "containerd namespace the kubelet uses")
	flag.StringVar(&o.archive, "archive", "", "archive to import: a path, or - for standard input")
	flag.StringVar(&o.url, "url", "", "download the archive from this http(s) URL instead")
	flag.StringVar(&o.sha256, "sha256", "", "expected sha256 of the downloaded archive (hex)")
	flag.StringVar(&o.image, "image", "", "name to give the image, e.g. docker.io/library/app:dev (required)")
	flag.StringVar(&o.platform, "platform", "", "platform to import (default: this node's)")
	flag.StringVar(&o.snapshotter, "snapshotter", "overlayfs", "snapshotter to unpack for (the CRI's)")
	flag.StringVar(&o.workDir, "work-dir", os.TempDir(), "where a downloaded archive is kept")
	flag.StringVar(&o.resultPath, "result", "", "also write the JSON result here (e.g. /dev/termination-log)")
	flag.BoolVar(&o.exitZero, "exit-zero", false, "exit 0 on failure too (the result says what failed)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	flag.Parse()

	r := run(o)
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	if o.resultPath != "" {
		_ = os.WriteFile(o.resultPath, line, 0o644)
	}
	if !r.OK && !o.exitZero {
		os.Exit(1)
	}
}

func run(o options) result {
	r := result{Image: o.image}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	err := importImage(ctx, o, &r)
	if err != nil {
		r.OK = false
		var f *failure
		if errors.As(err, &f) {
			r.Reason = f.reason
		} else {
			r.Reason = "ImportFailed"
		}
		r.Message = truncate(err.Error(), 480)
		return r
	}
	r.OK = true
	return r
}

func importImage(ctx context.Context, o options, r *result) error {
	if o.image == "" {
		return fail("ImportFailed", "--image is required")
	}
	platform := platforms.DefaultSpec()
	if o.platform != "" {
		p, err := platforms.Parse(o.platform)
		if err != nil {
			return fail("ImportFailed", "bad --platform %q: %v", o.platform, err)
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
		return fail("RuntimeNotFound", "connecting to containerd at %s: %v", address, err)
	}
	defer client.Close()

	// The whole archive's index gets a temporary name, so that an archive that
	// names nothing still yields something to name; it is removed afterwards.
	indexName := fmt.Sprintf("import.prepull.dev/index:%d", time.Now().UnixNano())
	matcher := platforms.OnlyStrict(platform)
	imported, err := client.Import(ctx, source,
		containerd.WithImportPlatform(matcher),
		containerd.WithAllPlatforms(false),
		containerd.WithIndexName(indexName),
		containerd.WithSkipMissing(),
	)
	if err != nil {
		return fail("ImportFailed", "importing the archive: %v", err)
	}
	is := client.ImageService()
	defer func() { _ = is.Delete(context.WithoutCancel(ctx), indexName) }()

	target, err := chooseTarget(ctx, client, imported, indexName, o.image)
	if err != nil {
		return err
	}
	img := images.Image{
		Name:   o.image,
		Target: target,
		Labels: map[string]string{pinnedLabel: "pinned", managedLabel: "managed"},
	}
	if _, err := is.Update(ctx, img, "target", "labels."+pinnedLabel, "labels."+managedLabel); err != nil {
		if !errdefs.IsNotFound(err) {
			return fail("ImportFailed", "naming the image: %v", err)
		}
		if _, err := is.Create(ctx, img); err != nil {
			return fail("ImportFailed", "naming the image: %v", err)
		}
	}

	stored, err := is.Get(ctx, o.image)
	if err != nil {
		return fail("ImportFailed", "the image is not in containerd after the import: %v", err)
	}
	image := containerd.NewImageWithPlatform(client, stored, matcher)
	if err := image.Unpack(ctx, o.snapshotter); err != nil {
		if strings.Contains(err.Error(), "no match for platform") || errdefs.IsNotFound(err) {
			return fail("PlatformMismatch", "the archive has no %s image for %s: %v", r.Platform, o.image, err)
		}
		return fail("ImportFailed", "unpacking: %v", err)
	}
	unpacked, err := image.IsUnpacked(ctx, o.snapshotter)
	if err != nil || !unpacked {
		return fail("ImportFailed", "the image is not unpacked for %s after the import (%v)", o.snapshotter, err)
	}
	r.Digest = stored.Target.Digest.String()
	return nil
}

// chooseTarget finds the image the caller asked for among what the archive held.
func chooseTarget(ctx context.Context, client *containerd.Client, imported []images.Image, indexName, want string) (ocispec.Descriptor, error) {
	var named []images.Image
	var index *images.Image
	for i := range imported {
		switch {
		case imported[i].Name == indexName:
			index = &imported[i]
		case imported[i].Name == want:
			return imported[i].Target, nil
		case !strings.HasPrefix(imported[i].Name, "sha256:"):
			named = append(named, imported[i])
		}
	}
	if len(named) == 1 {
		return named[0].Target, nil
	}
	if len(named) > 1 {
		names := make([]string, 0, len(named))
		for _, n := range named {
			names = append(names, n.Name)
		}
		return ocispec.Descriptor{}, fail("ImageNotInArchive", "%s is not in the archive, which holds %s", want, strings.Join(names, ", "))
	}
	if index == nil {
		return ocispec.Descriptor{}, fail("ImageNotInArchive", "the archive holds no image")
	}
	// Unnamed: an archive with one image (or one multi-platform index) is that image.
	children, err := images.Children(ctx, client.ContentStore(), index.Target)
	if err != nil {
		return ocispec.Descriptor{}, fail("ImportFailed", "reading the archive's index: %v", err)
	}
	if len(children) != 1 {
		return ocispec.Descriptor{}, fail("ImageNotInArchive", "the archive holds %d unnamed images; cannot tell which is %s", len(children), want)
	}
	return children[0], nil
}

func findSocket(o options) (string, error) {
	if o.address != "" {
		if _, err := os.Stat(o.address); err != nil {
			return "", fail("RuntimeNotFound", "containerd socket %s: %v", o.address, err)
		}
		return o.address, nil
	}
	for _, c := range socketCandidates {
		p := filepath.Join(o.hostRoot, c)
		if st, err := os.Stat(p); err == nil && st.Mode()&os.ModeSocket != 0 {
			return p, nil
		}
	}
	return "", fail("RuntimeNotFound", "no containerd socket found under %s (looked for %s); set the socket explicitly", o.hostRoot, strings.Join(socketCandidates, ", "))
}

// openSource gives the archive as a reader: a file, standard input, or a
// download checked against its sha256 before anything is imported.
func openSource(ctx context.Context, o options) (io.Reader, func(), error) {
	switch {
	case o.url != "":
		path, err := download(ctx, o)
		if err != nil {
			return nil, nil, err
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fail("DownloadFailed", "%v", err)
		}
		return f, func() { f.Close(); os.Remove(path) }, nil
	case o.archive == "-":
		return os.Stdin, func() {}, nil
	case o.archive != "":
		f, err := os.Open(o.archive)
		if err != nil {
			return nil, nil, fail("ImportFailed", "opening the archive: %v", err)
		}
		return f, func() { f.Close() }, nil
	default:
		return nil, nil, fail("ImportFailed", "give --archive or --url")
	}
}

func download(ctx context.Context, o options) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
	if err != nil {
		return "", fail("DownloadFailed", "%v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fail("DownloadFailed", "downloading %s: %v", o.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fail("DownloadFailed", "downloading %s: HTTP %s", o.url, resp.Status)
	}
	f, err := os.CreateTemp(o.workDir, "archive-*.tar")
	if err != nil {
		return "", fail("DownloadFailed", "%v", err)
	}
	defer f.Close()
	hash := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, hash), resp.Body); err != nil {
		os.Remove(f.Name())
		return "", fail("DownloadFailed", "downloading %s: %v", o.url, err)
	}
	if o.sha256 != "" {
		got := hex.EncodeToString(hash.Sum(nil))
		if !strings.EqualFold(got, o.sha256) {
			os.Remove(f.Name())
			return "", fail("ChecksumMismatch", "the download has sha256 %s, the spec expects %s", got, strings.ToLower(o.sha256))
		}
	}
	return f.Name(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
