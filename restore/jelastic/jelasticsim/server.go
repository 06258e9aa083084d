package jelasticsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mbackup/mbackup/restore/jelastic"
)

// Defaults for Config fields left zero.
const (
	DefaultDomain     = "sim.local"
	DefaultCmdTimeout = 10 * time.Minute
	DefaultMaxOutput  = 1 << 20 // bytes per stream (out, errOut) per node
	maxRequestBytes   = 64 << 20
)

// Config configures a Server.
type Config struct {
	// Root is the folder holding one sub-folder per environment. It is
	// created when missing.
	Root string
	// PG is the PostgreSQL connection string (URL or key=value) of a role
	// that may create and drop databases, e.g.
	// postgres://postgres@127.0.0.1:5432/postgres.
	PG string
	// Token is the access token accepted in the session parameter.
	Token string
	// Login and Password, when both set, make signin issue sessions.
	Login    string
	Password string
	// Domain is the hoster domain: environment domains are NAME.Domain.
	Domain string
	// CmdTimeout bounds the commands of one exec request.
	CmdTimeout time.Duration
	// MaxOutput caps the captured stdout and stderr of one node's commands.
	MaxOutput int
	// Logger receives request records; nil discards them.
	Logger *slog.Logger
}

// Server is the simulator. It implements http.Handler.
type Server struct {
	cfg    Config
	pg     *pgx.ConnConfig
	pgEnv  []string // PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE for commands
	log    *slog.Logger
	routes map[string]route

	mu       sync.Mutex
	sessions map[string]bool
	envLocks map[string]*sync.Mutex

	idMu   sync.Mutex
	lastID int
}

type route struct {
	handler func(ctx context.Context, p params) (response, error)
	noAuth  bool
}

// response is a success payload; "result":0 is added when writing it.
type response map[string]any

// apiError is an answer with result != 0. extra is merged into the
// envelope (ExecCmd failures carry their responses[] there).
type apiError struct {
	code  int
	msg   string
	extra response
}

func (e *apiError) Error() string { return fmt.Sprintf("result %d: %s", e.code, e.msg) }

func apiErr(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// New checks cfg, prepares Root and records the environments found there.
// It does not contact PostgreSQL; see CheckPG.
func New(cfg Config) (*Server, error) {
	if cfg.Root == "" {
		return nil, errors.New("jelasticsim: no root folder given")
	}
	if cfg.PG == "" {
		return nil, errors.New("jelasticsim: no PostgreSQL connection string given")
	}
	if cfg.Token == "" && (cfg.Login == "" || cfg.Password == "") {
		return nil, errors.New("jelasticsim: neither a token nor a login and password given: every request would be refused")
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.CmdTimeout <= 0 {
		cfg.CmdTimeout = DefaultCmdTimeout
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = DefaultMaxOutput
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pgcfg, err := pgx.ParseConfig(cfg.PG)
	if err != nil {
		// pgx errors can quote the connection string, password included.
		return nil, errors.New("jelasticsim: cannot parse the PostgreSQL connection string")
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("jelasticsim: create root folder: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		pg:       pgcfg,
		pgEnv:    pgEnviron(cfg.PG, pgcfg),
		log:      cfg.Logger,
		sessions: map[string]bool{},
		envLocks: map[string]*sync.Mutex{},
	}
	s.routes = s.routeTable()
	if err := s.startup(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) routeTable() map[string]route {
	return map[string]route{
		"users/authentication/signin":        {handler: s.signin, noAuth: true},
		"users/authentication/signout":       {handler: s.signout},
		"users/account/getuserinfo":          {handler: s.getUserInfo},
		"environment/control/getenvs":        {handler: s.getEnvs},
		"environment/control/getenvinfo":     {handler: s.getEnvInfo},
		"environment/control/cloneenv":       {handler: s.cloneEnv},
		"environment/control/startenv":       {handler: s.statusChanger(jelastic.StatusRunning)},
		"environment/control/stopenv":        {handler: s.statusChanger(jelastic.StatusStopped)},
		"environment/control/sleepenv":       {handler: s.statusChanger(jelastic.StatusSleeping)},
		"environment/control/deleteenv":      {handler: s.deleteEnv},
		"environment/control/execcmdbygroup": {handler: s.execCmdByGroup},
		"environment/control/execcmdbyid":    {handler: s.execCmdByID},
		"environment/control/restartnodes":   {handler: s.restartNodes},
		"environment/file/read":              {handler: s.fileRead},
		"environment/file/write":             {handler: s.fileWrite},
	}
}

// ServeHTTP answers /1.0/<group>/<service>/rest/<method>.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key, service, ok := splitPath(r.URL.Path)
	p, perr := readParams(w, r)
	var (
		resp response
		err  error
	)
	switch rt, known := s.routes[key]; {
	case !ok:
		err = apiErr(jelastic.CodeServiceNotFound, "service not found: %s is not /1.0/<group>/<service>/rest/<method>", r.URL.Path)
	case !known && !s.knownService(service):
		err = apiErr(jelastic.CodeServiceNotFound, "service [%s] not found", service)
	case !known:
		err = apiErr(jelastic.CodeMethodNotFound, "method [%s] not found", key)
	case perr != nil:
		err = apiErr(jelastic.CodeInvalidParameter, "invalid parameters: %v", perr)
	case !rt.noAuth && !s.authenticated(p.get("session")):
		err = apiErr(jelastic.CodeNotAuthenticated, "user is not authenticated")
	default:
		resp, err = rt.handler(r.Context(), p)
	}
	code := s.write(w, resp, err)
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "jelastic-sim request",
		slog.String("http", r.Method), slog.String("method", key),
		slog.String("env", firstNonEmpty(p.get("envName"), p.get("srcEnvName"))),
		slog.Int("result", code), slog.Duration("duration", time.Since(start)))
}

// write sends the envelope and returns its result code.
func (s *Server) write(w http.ResponseWriter, resp response, err error) int {
	out := response{}
	for k, v := range resp {
		out[k] = v
	}
	code := jelastic.CodeOK
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{code: jelastic.CodeUnknown, msg: err.Error()}
		}
		code = ae.code
		for k, v := range ae.extra {
			out[k] = v
		}
		out["error"] = ae.msg
		out["source"] = "jelastic-sim"
	}
	out["result"] = code
	body, merr := json.Marshal(out)
	if merr != nil {
		code = jelastic.CodeUnknown
		body = fmt.Appendf(nil, `{"result":%d,"error":"encode response failed"}`, code)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return code
}

func (s *Server) knownService(service string) bool {
	for k := range s.routes {
		if strings.HasPrefix(k, service+"/") {
			return true
		}
	}
	return false
}

// splitPath turns /1.0/Environment/Control/REST/GetEnvInfo into
// ("environment/control/getenvinfo", "environment/control", true).
func splitPath(path string) (key, service string, ok bool) {
	parts := strings.Split(strings.Trim(strings.ToLower(path), "/"), "/")
	if len(parts) != 5 || parts[0] != "1.0" || parts[3] != "rest" {
		return "", "", false
	}
	for _, p := range parts {
		if p == "" {
			return "", "", false
		}
	}
	service = parts[1] + "/" + parts[2]
	return service + "/" + parts[4], service, true
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
