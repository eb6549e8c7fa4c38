package main

import (
	"net/url"
	"regexp"
)

// redactURL gives a URL without userinfo, query or fragment: what may be
// printed. Presigned tokens and passwords live in those parts.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<URL>"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// redactURLs redacts every URL in a message: the last guard, for errors
// from libraries that quote the URL they were given.
func redactURLs(message string) string {
	return urlPattern.ReplaceAllStringFunc(message, redactURL)
}
