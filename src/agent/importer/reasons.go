package main

// The reasons a result may carry: the same strings as Reason in
// src/api/conditions.ts, which the controller copies into status.
const (
	ReasonImportFailed      = "ImportFailed"      // anything not classified below
	ReasonDownloadFailed    = "DownloadFailed"    // the download could not be made or answered non-200
	ReasonChecksumMismatch  = "ChecksumMismatch"  // the download's sha256 is not --sha256
	ReasonChecksumRequired  = "ChecksumRequired"  // an http:// URL without --sha256
	ReasonRedirectRefused   = "RedirectRefused"   // https to http, or more than --max-redirects hops
	ReasonUnauthorized      = "Unauthorized"      // the download answered 401 or 403
	ReasonDownloadTooLarge  = "DownloadTooLarge"  // the body is larger than --max-download-bytes
	ReasonArchiveTooLarge   = "ArchiveTooLarge"   // the archive is larger than --max-archive-bytes
	ReasonPathRefused       = "PathRefused"       // a .. segment, or a path leaving --archive-root
	ReasonNotRegularFile    = "NotRegularFile"    // a FIFO, device, socket or directory
	ReasonImageNotInArchive = "ImageNotInArchive" // the archive does not say which image is wanted
	ReasonDigestMismatch    = "DigestMismatch"    // the name's @sha256: is not the archive image's digest
	ReasonImportConflict    = "ImportConflict"    // the name is held by an image Prepull does not own here
	ReasonPlatformMismatch  = "PlatformMismatch"  // no image for this node's platform
	ReasonRuntimeNotFound   = "RuntimeNotFound"   // no containerd socket, or it does not answer
)
