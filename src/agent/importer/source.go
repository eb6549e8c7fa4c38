package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// openSource gives the archive as a reader: a file, standard input, or a
// download checked against its sha256 before anything is imported. A file
// must be a regular file (a FIFO would block forever, a device never end);
// its path must have no .. segment and, with --archive-root, stay inside it.
func openSource(ctx context.Context, o options) (io.Reader, func(), error) {
	switch {
	case o.url != "":
		p, err := download(ctx, o)
		if err != nil {
			return nil, nil, err
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, nil, fail(ReasonDownloadFailed, "%v", err)
		}
		return f, func() { f.Close(); os.Remove(p) }, nil
	case o.archive == "-":
		return os.Stdin, func() {}, nil
	case o.archive != "":
		f, err := openArchiveFile(o)
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	default:
		return nil, nil, fail(ReasonImportFailed, "give --archive or --url")
	}
}

func openArchiveFile(o options) (*os.File, error) {
	if hasDotDot(o.archive) {
		return nil, fail(ReasonPathRefused, "the archive path %s has a .. segment", o.archive)
	}
	p := o.archive
	flags := os.O_RDONLY | syscall.O_NONBLOCK
	if o.archiveRoot != "" {
		resolved, err := resolveInRoot(o.archiveRoot, o.archive)
		if err != nil {
			return nil, err
		}
		p = resolved
		// Resolved: a symlink put in its place since is not followed.
		flags |= syscall.O_NOFOLLOW
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fail(ReasonImportFailed, "opening the archive: %v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(o.archive, st.Mode())
	}
	// Non-blocking, so that a FIFO swapped in since the stat cannot hang the open.
	f, err := os.OpenFile(p, flags, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fail(ReasonPathRefused, "the archive %s became a symlink while it was opened", o.archive)
		}
		return nil, fail(ReasonImportFailed, "opening the archive: %v", err)
	}
	st, err = f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, fail(ReasonImportFailed, "opening the archive: %v", err)
		}
		return nil, notRegular(o.archive, st.Mode())
	}
	if st.Size() > o.maxArchiveBytes {
		f.Close()
		return nil, fail(ReasonArchiveTooLarge, "the archive %s is %d bytes, more than the limit of %d", o.archive, st.Size(), o.maxArchiveBytes)
	}
	return f, nil
}

func notRegular(name string, mode fs.FileMode) error {
	kind := "not a regular file"
	switch {
	case mode&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case mode.IsDir():
		kind = "a directory"
	case mode&fs.ModeDevice != 0:
		kind = "a device"
	case mode&fs.ModeSocket != 0:
		kind = "a socket"
	}
	return fail(ReasonNotRegularFile, "the archive %s is %s, not a regular file", name, kind)
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// resolveInRoot resolves unsafe inside root as if root were /: absolute
// symlink targets start again at root, and a symlink's .. stops at root.
// (The caller refused .. in unsafe itself.)
func resolveInRoot(root, unsafe string) (string, error) {
	resolved := "/"
	pending := strings.Split(unsafe, "/")
	for hops := 0; len(pending) > 0; {
		part := pending[0]
		pending = pending[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, part)
		st, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			// Missing: the open reports it with the path as given.
			return filepath.Join(root, next, filepath.Join(pending...)), nil
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if hops++; hops > 40 {
			return "", fail(ReasonPathRefused, "the archive path %s has too many symlinks", unsafe)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", fail(ReasonImportFailed, "reading the link %s: %v", next, err)
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return filepath.Join(root, resolved), nil
}
