package jelastic

import (
	"errors"
	"net/url"
	"strings"
)

const redacted = "[REDACTED]"

// redactURL renders u without user info, query or fragment: the parts that
// could carry a credential.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}

// redactErr makes err safe to show. *url.Error is dropped for its cause
// (TransportError carries its own redacted URL). If the remaining text
// still contains a secret, the error is replaced by a redacted copy, which
// gives up unwrapping rather than risk a leak through the chain.
func redactErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	msg := err.Error()
	if clean := redactString(msg, secrets); clean != msg {
		return errors.New(clean)
	}
	return err
}

func redactString(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		s = strings.ReplaceAll(s, sec, redacted)
		// A form-encoded or URL-escaped copy is just as secret.
		if esc := url.QueryEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, redacted)
		}
		if esc := url.PathEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, redacted)
		}
	}
	return s
}

// snippet returns the start of an unexpected response body for an error
// message, with secrets removed.
func snippet(body []byte, secrets []string) string {
	const maxLen = 256
	s := string(body)
	s = redactString(s, secrets)
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return strings.ToValidUTF8(strings.TrimSpace(s), "")
}
