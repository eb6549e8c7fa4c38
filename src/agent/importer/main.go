// prepull-import puts one image from an archive into the node's containerd,
// in the namespace the kubelet uses (k8s.io), the way a pull would have:
//
//   - for this node's platform only, so multi-platform archives whose other
//     platforms' blobs are missing import fine;
//   - under the name the PrePulledImage asks for, whatever the archive calls
//     it (an unnamed OCI archive included: ctr's --base-name would silently
//     import nothing there), and under no other name: the archive's own names
//     are never applied;
//   - unpacked for the CRI's snapshotter, checked to exist afterwards, and
//     pinned (io.cri-containerd.pinned) so kubelet image GC keeps it.
//
// It never replaces what it does not own (see store.go): an image of the same
// name that Prepull did not import (or imported for another --owner) is left
// alone and the result is ImportConflict, unless its content is identical. A
// name with @sha256: must match the archive's digest. Downloads and archive
// paths are hardened (download.go, source.go), and no message it writes
// carries a URL's userinfo or query (redact.go). A download's credential comes
// on standard input (--credentials-stdin), never in its arguments, and is sent
// to the URL's own origin only.
//
// It uses containerd's own client library rather than running ctr: one
// static binary that works against containerd 1.6, 1.7 and 2.x (none of which
// need the transfer service), and errors it can classify. The outcome is one
// JSON line, written to stdout and to --result (the pod's termination
// message): {"ok":bool,"image":…,"digest":…,"platform":…,"socket":…,
// "reason":…,"message":…}. The reasons are listed in reasons.go.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

type result struct {
	OK       bool   `json:"ok"`
	Image    string `json:"image"`
	Digest   string `json:"digest,omitempty"`
	Platform string `json:"platform,omitempty"`
	Socket   string `json:"socket,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	// Unpinned: with --unpin, the images it unpinned.
	Unpinned []string `json:"unpinned,omitempty"`
}

type failure struct {
	reason string
	err    error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func fail(reason string, format string, args ...any) error {
	return &failure{reason: reason, err: fmt.Errorf(format, args...)}
}

const gib = int64(1) << 30

type options struct {
	address          string
	hostRoot         string
	namespace        string
	archive          string
	archiveRoot      string
	url              string
	sha256           string
	image            string
	owner            string
	platform         string
	snapshotter      string
	workDir          string
	resultPath       string
	exitZero         bool
	timeout          time.Duration
	maxDownloadBytes int64
	maxArchiveBytes  int64
	maxRedirects     int
	unpin            bool
	unpinExcept      string
	caFile           string
	redirectWithin   urlPrefixes
	credentialsStdin bool
	// authorization: the Authorization value read with --credentials-stdin; never printed.
	authorization string
}

func main() {
	var o options
	flag.StringVar(&o.address, "address", "", "containerd socket (default: detected under --host-root)")
	flag.StringVar(&o.hostRoot, "host-root", "/host", "where the node's root filesystem is mounted, for socket detection")
	flag.StringVar(&o.namespace, "namespace", "k8s.io", "containerd namespace the kubelet uses")
	flag.StringVar(&o.archive, "archive", "", "archive to import: a path (relative to --archive-root when given), or - for standard input; a path with a .. segment is refused")
	flag.StringVar(&o.archiveRoot, "archive-root", "", "directory the archive must stay in: --archive is resolved inside it, symlinks included, as if it were /")
	flag.StringVar(&o.url, "url", "", "download the archive from this http(s) URL instead (http:// needs --sha256)")
	flag.StringVar(&o.sha256, "sha256", "", "expected sha256 of the downloaded archive (hex)")
	flag.StringVar(&o.image, "image", "", "name to give the image, e.g. docker.io/library/app:dev (required)")
	flag.StringVar(&o.owner, "owner", "", "who the import is for (e.g. the PrePulledImage's namespace); an image Prepull imported for another owner is not replaced")
	flag.StringVar(&o.platform, "platform", "", "platform to import (default: this node's)")
	flag.StringVar(&o.snapshotter, "snapshotter", "overlayfs", "snapshotter to unpack for (the CRI's)")
	flag.StringVar(&o.workDir, "work-dir", os.TempDir(), "where a downloaded archive is kept")
	flag.StringVar(&o.resultPath, "result", "", "also write the JSON result here (e.g. /dev/termination-log)")
	flag.BoolVar(&o.exitZero, "exit-zero", false, "exit 0 on failure too (the result says what failed)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	flag.Int64Var(&o.maxDownloadBytes, "max-download-bytes", 16*gib, "largest download accepted, in bytes")
	flag.Int64Var(&o.maxArchiveBytes, "max-archive-bytes", 16*gib, "most bytes one archive may write into containerd's content store")
	flag.IntVar(&o.maxRedirects, "max-redirects", 5, "most HTTP redirects a download follows (never https to http)")
	flag.Var(&o.redirectWithin, "redirect-within", "a URL prefix (scheme, host and port, path) every redirect must stay within; repeatable (default: any https URL)")
	flag.StringVar(&o.caFile, "ca-file", "", "PEM bundle trusted for https downloads besides the system's")
	flag.BoolVar(&o.credentialsStdin, "credentials-stdin", false, `read the download's credential from standard input, as JSON {"authorization": "<HTTP Authorization value>"}; sent to the URL's own origin only`)
	flag.BoolVar(&o.unpin, "unpin", false, "import nothing: unpin every image Prepull imported whose name is not in --unpin-except")
	flag.StringVar(&o.unpinExcept, "unpin-except", "", "with --unpin: the image names still held on this node, separated by commas")
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
	var err error
	switch {
	case o.unpin:
		r.Unpinned, err = unpinUnheld(ctx, o, keepSet(o.unpinExcept))
	case o.credentialsStdin && o.url == "":
		err = fail(ReasonImportFailed, "--credentials-stdin is for a --url download")
	default:
		if o.credentialsStdin {
			o.authorization, err = readCredential(os.Stdin)
		}
		if err == nil {
			err = importImage(ctx, o, &r)
		}
	}
	if err != nil {
		r.OK = false
		var f *failure
		if errors.As(err, &f) {
			r.Reason = f.reason
		} else {
			r.Reason = ReasonImportFailed
		}
		// Every message goes through redaction, whatever produced it.
		r.Message = truncate(redactURLs(err.Error()), 480)
		return r
	}
	r.OK = true
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
