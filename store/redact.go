package store

import "strings"

// Redact returns a store specification fit to print: the password of a
// URL ("redis://user:secret@host") becomes "xxxxx". It works on a URL that
// does not parse too, since that is when it ends up in an error message.
func Redact(spec string) string {
	if pw := password(spec); pw != "" {
		return strings.ReplaceAll(spec, pw, "xxxxx")
	}
	return spec
}

// RedactError is err's message without the password of spec, for errors
// that quote the specification they failed on.
func RedactError(spec string, err error) string {
	if pw := password(spec); pw != "" {
		return strings.ReplaceAll(err.Error(), pw, "xxxxx")
	}
	return err.Error()
}

// password is what follows the first ":" of a URL's user information. The
// scheme may be mistyped ("redis:/", "redis:") and the password is still
// found: a mistyped URL is the one most likely to be printed in an error.
func password(spec string) string {
	_, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return ""
	}
	rest = strings.TrimLeft(rest, "/")
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}
