package main

import (
	"context"
	"sort"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

// unpinUnheld takes io.cri-containerd.pinned off every image Prepull imported
// (label prepull.dev/imported) whose name is not in keep: no PrePulledImage on
// this node holds it any longer, so kubelet image GC may remove it once no
// container uses it. Nothing is deleted here, and images Prepull did not import
// are never touched. Returns the names it unpinned, sorted.
func unpinUnheld(ctx context.Context, o options, keep map[string]bool) ([]string, error) {
	address, err := findSocket(o)
	if err != nil {
		return nil, err
	}
	client, err := containerd.New(address, containerd.WithDefaultNamespace(o.namespace), containerd.WithTimeout(30*time.Second))
	if err != nil {
		return nil, fail(ReasonRuntimeNotFound, "connecting to containerd at %s: %v", address, err)
	}
	defer client.Close()
	is := client.ImageService()
	// Every image, filtered here rather than by a server-side label filter,
	// which containerd versions parse differently.
	list, err := is.List(ctx)
	if err != nil {
		return nil, fail(ReasonImportFailed, "listing images: %v", err)
	}
	var unpinned []string
	for _, img := range list {
		imported := img.Labels[importedLabel]
		if imported == "" || keep[imported] || img.Labels[pinnedLabel] == "" {
			continue
		}
		// The name Prepull imported it as, or a reference the CRI made for it
		// (its image ID, sha256:…, carrying the same labels).
		if img.Name != imported && !strings.HasPrefix(img.Name, "sha256:") {
			continue
		}
		delete(img.Labels, pinnedLabel)
		if _, err := is.Update(ctx, img, "labels."+pinnedLabel); err != nil {
			return unpinned, fail(ReasonImportFailed, "unpinning %s: %v", img.Name, err)
		}
		unpinned = append(unpinned, img.Name)
	}
	sort.Strings(unpinned)
	return unpinned, nil
}

// keepSet parses --unpin-except: image names separated by commas (a name has none).
func keepSet(list string) map[string]bool {
	keep := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			keep[name] = true
		}
	}
	return keep
}
