package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkHTTPURL accepts an absolute http(s) URL with a host. Its errors never
// contain the URL, which may carry a token.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("not an http:// or https:// URL")
	}
	return nil
}

func (d *decoder) notify(v *yaml.Node, key string, n *Notify) {
	d.fields(v, key, map[string]handler{
		"webhook": func(v *yaml.Node, key string, line int) { n.Webhook = d.webhook(v, key, line) },
		"email":   func(v *yaml.Node, key string, line int) { n.Email = d.email(v, key, line) },
		"on": func(v *yaml.Node, key string, _ int) {
			if !d.isKind(v, key, yaml.SequenceNode) {
				return
			}
			n.On = []string{}
			for i, item := range v.Content {
				item = deref(item)
				ikey := fmt.Sprintf("%s[%d]", key, i)
				s, ok := d.str(item, ikey)
				if !ok {
					continue
				}
				if s != EventFailure && s != EventRecovery {
					d.fail(item.Line, ikey, "use failure or recovery", "unknown event %q", s)
					continue
				}
				n.On = append(n.On, s)
			}
		},
	})
}

func (d *decoder) webhook(v *yaml.Node, key string, line int) *Webhook {
	w := &Webhook{}
	var urlSeen bool
	ok := d.fields(v, key, map[string]handler{
		"url": func(v *yaml.Node, key string, _ int) {
			urlSeen = true
			if s, ok := d.required(v, key, "write the endpoint, e.g. https://hooks.example.ch/mbackup"); ok {
				if err := checkHTTPURL(s); err != nil {
					d.fail(v.Line, key, "write the endpoint, e.g. https://hooks.example.ch/mbackup", "%v", err)
					return
				}
				w.URL = NewSecret(s)
			}
		},
		"headers": func(v *yaml.Node, key string, _ int) {
			if !d.isKind(v, key, yaml.MappingNode) {
				return
			}
			w.Headers = map[string]Secret{}
			for _, e := range d.entries(v, key) {
				hkey := join(key, e.name)
				if !validHeaderName(e.name) {
					d.fail(e.k.Line, hkey, "use letters, digits and '-'", "bad HTTP header name")
					continue
				}
				val := deref(e.v)
				s, ok := d.str(val, hkey)
				if !ok {
					continue
				}
				// The value may be a token: never echo it.
				if strings.ContainsAny(s, "\r\n") {
					d.fail(val.Line, hkey, "write the value on one line", "header value contains a line break")
					continue
				}
				w.Headers[e.name] = NewSecret(s)
			}
		},
	})
	if ok && !urlSeen {
		d.fail(line, key, "add url: https://...", "missing url")
	}
	return w
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func (d *decoder) email(v *yaml.Node, key string, line int) *Email {
	e := &Email{SMTPPort: DefaultSMTPPort, StartTLS: true}
	var pwFile, pwEnv int
	seen := map[string]bool{}
	address := func(v *yaml.Node, key string) (string, bool) {
		s, ok := d.required(v, key, "write an address such as backup@example.ch")
		if !ok {
			return "", false
		}
		if _, err := mail.ParseAddress(s); err != nil {
			d.fail(v.Line, key, "write an address such as backup@example.ch", "bad e-mail address %q", s)
			return "", false
		}
		return s, true
	}
	ok := d.fields(v, key, map[string]handler{
		"smtp_host": func(v *yaml.Node, key string, _ int) {
			seen["smtp_host"] = true
			if s, ok := d.required(v, key, "write the mail server's host name"); ok {
				e.SMTPHost = s
			}
		},
		"smtp_port": func(v *yaml.Node, key string, _ int) {
			if n, ok := d.integer(v, key, 1); ok {
				if n > 65535 {
					d.fail(v.Line, key, "use a port from 1 to 65535", "port %d is out of range", n)
					return
				}
				e.SMTPPort = n
			}
		},
		"from": func(v *yaml.Node, key string, _ int) {
			seen["from"] = true
			if a, ok := address(v, key); ok {
				e.From = a
			}
		},
		"to": func(v *yaml.Node, key string, _ int) {
			seen["to"] = true
			if !d.isKind(v, key, yaml.SequenceNode) {
				return
			}
			for i, item := range v.Content {
				if a, ok := address(deref(item), fmt.Sprintf("%s[%d]", key, i)); ok {
					e.To = append(e.To, a)
				}
			}
		},
		"username": func(v *yaml.Node, key string, _ int) {
			if s, ok := d.str(v, key); ok {
				e.Username = s
			}
		},
		"password_env": func(v *yaml.Node, key string, line int) {
			pwEnv = line
			d.secretEnv(v, key, &e.Password)
		},
		"password_file": func(v *yaml.Node, key string, line int) {
			pwFile = line
			d.secretFile(v, key, &e.Password)
		},
		"starttls": func(v *yaml.Node, key string, _ int) {
			if b, ok := d.boolean(v, key); ok {
				e.StartTLS = b
			}
		},
	})
	if !ok {
		return e
	}
	if !seen["smtp_host"] {
		d.fail(line, key, "add smtp_host: mail.example.ch", "missing smtp_host")
	}
	if !seen["from"] {
		d.fail(line, key, "add from: backup@example.ch", "missing from")
	}
	if !seen["to"] {
		d.fail(line, key, "add to: [ops@example.ch]", "missing to")
	}
	if pwFile != 0 && pwEnv != 0 {
		d.fail(max(pwFile, pwEnv), key, "keep only one of them", "both password_file and password_env are set")
	}
	if (pwFile != 0 || pwEnv != 0) && e.Username == "" {
		d.fail(max(pwFile, pwEnv), key, "add username: or remove the password", "a password needs a username")
	}
	return e
}

// mailAddress returns the bare address of s ("Name <a@b>" gives "a@b").
func mailAddress(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}
