package notify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"
)

// Email sends each event as a plain-text e-mail. With StartTLS the
// connection is upgraded before anything else is said and a server
// without STARTTLS is an error (never a silent fall-back to plain text);
// port 465 speaks TLS from the first byte (SMTPS). Authentication, when a
// Username is set, is PLAIN, which net/smtp allows only over TLS or to
// localhost.
type Email struct {
	Host     string
	Port     int
	From     string   // "Name <addr>" or addr
	To       []string // idem
	Username string
	Password string // secret
	StartTLS bool
	// TLS is the TLS client configuration (nil: verify Host against the
	// system roots). Tests set RootCAs.
	TLS *tls.Config
	Loc *time.Location // for times in the body
}

// Name implements Sender.
func (m *Email) Name() string { return "email" }

// Send implements Sender.
func (m *Email) Send(ctx context.Context, e Event) error {
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return fmt.Errorf("from address %q: %w", m.From, err)
	}
	var rcpts []string
	for _, t := range m.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return fmt.Errorf("to address %q: %w", t, err)
		}
		rcpts = append(rcpts, a.Address)
	}
	msg := m.message(e)

	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	tlsConf := m.tlsConfig()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Closing the connection is how a cancelled ctx interrupts net/smtp.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if m.Port == 465 && !m.StartTLS {
		conn = tls.Client(conn, tlsConf)
	}
	c, err := smtp.NewClient(conn, m.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer c.Close()
	if err := m.converse(c, tlsConf, from.Address, rcpts, msg); err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	return nil
}

func (m *Email) converse(c *smtp.Client, tlsConf *tls.Config, from string, rcpts []string, msg []byte) error {
	if err := c.Hello(localName()); err != nil {
		return err
	}
	if m.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("server does not offer STARTTLS (set notify.email.starttls: false only for a trusted local relay)")
		}
		if err := c.StartTLS(tlsConf); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if m.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, m.Host)); err != nil {
			// net/smtp's messages quote the server, never the password.
			return fmt.Errorf("authenticate as %s: %w", m.Username, err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

func (m *Email) tlsConfig() *tls.Config {
	if m.TLS != nil {
		c := m.TLS.Clone()
		if c.ServerName == "" {
			c.ServerName = m.Host
		}
		return c
	}
	return &tls.Config{ServerName: m.Host, MinVersion: tls.VersionTLS12}
}

// message renders the e-mail with CRLF line ends.
func (m *Email) message(e Event) []byte {
	var b strings.Builder
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", m.From)
	hdr("To", strings.Join(m.To, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", e.Subject()))
	hdr("Date", e.Time.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+messageID()+"@"+localName()+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	body := strings.ReplaceAll(e.Body(m.Loc), "\r\n", "\n")
	// net/smtp's DATA writer does the dot-stuffing.
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		b.WriteString(line + "\r\n")
	}
	return []byte(b.String())
}

func messageID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func localName() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \r\n") {
		return "localhost"
	}
	return h
}
