package jelasticsim

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"

	"github.com/mbackup/mbackup/restore/jelastic"
)

const simUID = 1001

// authenticated reports whether session is the configured token or a
// session issued by signin.
func (s *Server) authenticated(session string) bool {
	if session == "" {
		return false
	}
	if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(session), []byte(s.cfg.Token)) == 1 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[session]
}

func (s *Server) signin(_ context.Context, p params) (response, error) {
	login, password := p.get("login"), p.get("password")
	ok := s.cfg.Login != "" && s.cfg.Password != "" &&
		subtle.ConstantTimeCompare([]byte(login), []byte(s.cfg.Login)) == 1 &&
		subtle.ConstantTimeCompare([]byte(password), []byte(s.cfg.Password)) == 1
	if !ok {
		return nil, apiErr(jelastic.CodeAuthFailed, "authentication failed")
	}
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	session := hex.EncodeToString(b)
	s.mu.Lock()
	s.sessions[session] = true
	s.mu.Unlock()
	return response{"session": session, "uid": simUID, "email": s.cfg.Login, "name": "jelastic-sim",
		"accessType": "FULL_ACCESS", "authType": "BASIC", "status": "ENABLED"}, nil
}

// signout ends a signin session; the configured token stays valid.
func (s *Server) signout(_ context.Context, p params) (response, error) {
	s.mu.Lock()
	delete(s.sessions, p.get("session"))
	s.mu.Unlock()
	return response{}, nil
}

func (s *Server) getUserInfo(context.Context, params) (response, error) {
	email := s.cfg.Login
	if email == "" {
		email = "operator@" + s.cfg.Domain
	}
	return response{"uid": simUID, "email": email, "name": "jelastic-sim", "status": "ENABLED"}, nil
}
