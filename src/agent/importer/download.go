package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// download fetches --url into --work-dir and checks it against --sha256
// before anything is imported. It follows at most --max-redirects redirects,
// never from https to http and, with --redirect-within, only within those
// prefixes; takes at most --max-download-bytes; sends a --credentials-stdin
// credential over https to the URL's own origin only (401 and 403 are
// Unauthorized); and names the URL only redacted.
func download(ctx context.Context, o options) (string, error) {
	shown := redactURL(o.url)
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fail(ReasonDownloadFailed, "%s is not an http(s) URL", shown)
	}
	if u.Scheme == "http" && o.sha256 == "" {
		return "", fail(ReasonChecksumRequired, "%s is plain http: a sha256 is required to trust what it serves", shown)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
	if err != nil {
		return "", fail(ReasonDownloadFailed, "%s: %v", shown, err)
	}
	if o.authorization != "" {
		if u.Scheme != "https" {
			return "", fail(ReasonDownloadFailed, "%s is plain http: a credential is sent over https only", shown)
		}
		req.Header.Set("Authorization", o.authorization)
	}
	client, err := httpClient(o)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		var f *failure
		if errors.As(err, &f) {
			return "", f
		}
		return "", fail(ReasonDownloadFailed, "downloading %s: %v", shown, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		hint := "give the credential in tarball.credentialsSecretRef"
		if o.authorization != "" {
			hint = "the credential in tarball.credentialsSecretRef was refused"
		}
		return "", fail(ReasonUnauthorized, "downloading %s: HTTP %s: %s", shown, resp.Status, hint)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fail(ReasonDownloadFailed, "downloading %s: HTTP %s", shown, resp.Status)
	}
	if resp.ContentLength > o.maxDownloadBytes {
		return "", fail(ReasonDownloadTooLarge, "%s is %d bytes, more than the limit of %d", shown, resp.ContentLength, o.maxDownloadBytes)
	}
	f, err := os.CreateTemp(o.workDir, "archive-*.tar")
	if err != nil {
		return "", fail(ReasonDownloadFailed, "%v", err)
	}
	defer f.Close()
	hash := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, hash), io.LimitReader(resp.Body, o.maxDownloadBytes+1))
	if err != nil {
		os.Remove(f.Name())
		return "", fail(ReasonDownloadFailed, "downloading %s: %v", shown, err)
	}
	if n > o.maxDownloadBytes {
		os.Remove(f.Name())
		return "", fail(ReasonDownloadTooLarge, "%s sent more than the limit of %d bytes", shown, o.maxDownloadBytes)
	}
	if o.sha256 != "" {
		got := hex.EncodeToString(hash.Sum(nil))
		if !strings.EqualFold(got, o.sha256) {
			os.Remove(f.Name())
			return "", fail(ReasonChecksumMismatch, "the download has sha256 %s, the spec expects %s", got, strings.ToLower(o.sha256))
		}
	}
	return f.Name(), nil
}

func httpClient(o options) (*http.Client, error) {
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ForceAttemptHTTP2:     true,
	}
	if o.caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fail(ReasonDownloadFailed, "reading --ca-file: %v", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fail(ReasonDownloadFailed, "--ca-file %s holds no PEM certificate", o.caFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	origin, _ := url.Parse(o.url)
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > o.maxRedirects {
				return fail(ReasonRedirectRefused, "%s redirected more than %d times", redactURL(o.url), o.maxRedirects)
			}
			from := via[len(via)-1].URL
			if from.Scheme == "https" && req.URL.Scheme != "https" {
				return fail(ReasonRedirectRefused, "%s redirected from https to %s (%s): refused", redactURL(o.url), req.URL.Scheme, redactURL(req.URL.String()))
			}
			if len(o.redirectWithin) > 0 && !o.redirectWithin.allow(req.URL) {
				return fail(ReasonRedirectRefused, "%s redirected to %s, which the import policy does not allow: refused", redactURL(o.url), redactURL(req.URL.String()))
			}
			// The credential is for the URL's own origin: net/http would still
			// send it to another port of the same host, or to a subdomain.
			if !sameOrigin(origin, req.URL) {
				req.Header.Del("Authorization")
			}
			return nil
		},
	}, nil
}

// sameOrigin: same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return a != nil && b != nil && a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// maxCredentialBytes bounds what --credentials-stdin reads.
const maxCredentialBytes = 64 << 10

// readCredential reads --credentials-stdin's JSON from r. Its errors never quote the input.
func readCredential(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCredentialBytes+1))
	if err != nil {
		return "", fail(ReasonDownloadFailed, "reading the credential from standard input: %v", err)
	}
	if len(data) > maxCredentialBytes {
		return "", fail(ReasonDownloadFailed, "the credential on standard input is larger than %d bytes", maxCredentialBytes)
	}
	var in struct {
		Authorization string `json:"authorization"`
	}
	if json.Unmarshal(data, &in) != nil || in.Authorization == "" || strings.ContainsAny(in.Authorization, "\r\n") {
		return "", fail(ReasonDownloadFailed, `the credential on standard input is not {"authorization": "<one line>"}`)
	}
	return in.Authorization, nil
}

// unwrapURLError drops net/http's own quoting of the URL (which keeps the
// username and query) and keeps the cause.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s", ue.Err.Error())
	}
	return err
}

// urlPrefixes is --redirect-within: the import policy's URL prefixes for the
// entry, the same test as urlWithin in src/image/import-policy.ts.
type urlPrefixes []*url.URL

func (p *urlPrefixes) String() string { return fmt.Sprint(len(*p), " prefixes") }

func (p *urlPrefixes) Set(value string) error {
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("not an http(s) URL prefix without userinfo")
	}
	if u.Path == "" {
		u.Path = "/"
	}
	*p = append(*p, u)
	return nil
}

// allow: same scheme and host (and port); the path starts with the prefix's; no userinfo.
func (p urlPrefixes) allow(u *url.URL) bool {
	if u.User != nil {
		return false
	}
	for _, prefix := range p {
		if u.Scheme != prefix.Scheme || !strings.EqualFold(u.Host, prefix.Host) {
			continue
		}
		path := prefix.Path
		if path == "/" || u.Path == path || strings.HasPrefix(u.Path, strings.TrimSuffix(path, "/")+"/") {
			return true
		}
	}
	return false
}
