package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
	_ "time/tzdata" // timezone must load on hosts without a zoneinfo database

	"go.yaml.in/yaml/v3"
)

// LoadOption changes how Load works.
type LoadOption func(*loadOptions)

type loadOptions struct {
	lookupEnv      func(string) (string, bool)
	skipPathChecks bool
}

// WithLookupEnv makes Load read environment variables (for ${VAR} and, later,
// the *_env secrets) through f instead of os.LookupEnv.
func WithLookupEnv(f func(string) (string, bool)) LoadOption {
	return func(o *loadOptions) { o.lookupEnv = f }
}

// SkipPathChecks turns off the check that every environment's moodledata
// folder and config_php file exist, for commands that do not read them
// (e.g. restore --target-dir on another machine). The service can check one
// environment at a time with Environment.CheckPaths instead.
func SkipPathChecks() LoadOption {
	return func(o *loadOptions) { o.skipPathChecks = true }
}

// Load reads, validates and resolves the configuration file at path.
//
// Every problem with the file's content is an *Error (or, for several,
// Errors) naming file, line and key; a failure to read the file is any other
// error. Secrets are not read here: see RepositoryPassword and friends.
func Load(path string, opts ...LoadOption) (*Config, error) {
	o := loadOptions{lookupEnv: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{File: path, Msg: "configuration file does not exist", Fix: "check the path or pass --config PATH", Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("read configuration %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve configuration path %s: %w", path, err)
	}
	root, perr := parseYAML(data, path)
	if perr != nil {
		return nil, perr
	}
	d := &decoder{file: path, dir: filepath.Dir(abs), lookup: o.lookupEnv}
	cfg := d.config(root, o)
	switch errs := d.sorted(); len(errs) {
	case 0:
	case 1:
		return nil, errs[0]
	default:
		return nil, Errors(errs)
	}
	if w := modeWarning(path); w != "" {
		cfg.Warnings = append([]string{w}, cfg.Warnings...)
	}
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func parseYAML(data []byte, file string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Msg: "configuration is empty", Fix: "add at least a repository section"}
		}
		return nil, yamlError(file, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(file, err)
	default:
		return nil, &Error{File: file, Line: extra.Line, Msg: "a second YAML document is not supported", Fix: "remove the --- separator and merge the documents"}
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, &Error{File: file, Msg: "configuration is empty", Fix: "add at least a repository section"}
		}
		root = doc.Content[0]
	}
	return root, nil
}

// yamlParserProblems are the messages of the YAML parser (as opposed to
// the scanner). For them the library reports a 0-based line, the start of
// the construct it was parsing; scanner errors come 1-based.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

func yamlError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if yamlParserProblems[m[2]] {
			line++
		}
		return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2], Fix: "check indentation, colons and quoting"}
	}
	return &Error{File: file, Msg: "invalid YAML: " + msg, Fix: "check indentation, colons and quoting"}
}

// config decodes the whole file. Problems are collected in d.errs; the
// returned Config is only meaningful when there are none.
func (d *decoder) config(root *yaml.Node, o loadOptions) *Config {
	cfg := &Config{
		File:        d.file,
		Location:    time.Local,
		Concurrency: DefaultConcurrency,
		StateDir:    DefaultStateDir,
		Listen:      DefaultListen,
		LogFormat:   DefaultLogFormat,
		Retry:       Retry{Attempts: DefaultRetryAttempts, Delay: DefaultRetryDelay},
		Maintenance: Maintenance{CheckSubset: DefaultCheckSubset},
		Notify:      Notify{On: []string{EventFailure, EventRecovery}},
		Prune:       Prune{MaxUnused: DefaultMaxUnused, Grace: DefaultPruneGrace},
		envs:        map[string]*Environment{},
	}
	if root.Kind != yaml.MappingNode {
		d.fail(root.Line, "", "start from the example configuration", "the file must be a mapping of keys (repository:, environments:, ...), not %s", describe(root))
		return cfg
	}
	es := d.entries(root, "")
	// Schedules are evaluated in the timezone, wherever it is written.
	for _, e := range es {
		if e.name == "timezone" && !isNull(e.v) {
			d.timezone(deref(e.v), "timezone", cfg)
		}
	}
	var (
		defaults  layer
		envsNode  *yaml.Node
		repoFound bool
	)
	d.dispatch(es, "", map[string]handler{
		"timezone": func(*yaml.Node, string, int) {},
		"repository": func(v *yaml.Node, key string, line int) {
			repoFound = true
			d.repository(v, key, line, &cfg.Repository)
		},
		"jelastic": func(v *yaml.Node, key string, line int) { cfg.Jelastic = d.jelastic(v, key, line) },
		"defaults": func(v *yaml.Node, key string, _ int) {
			d.fields(v, key, d.layerHandlers(&defaults, cfg.Location))
		},
		"environments": func(v *yaml.Node, key string, _ int) {
			if d.isKind(v, key, yaml.MappingNode) {
				envsNode = v
			}
		},
		"concurrency": func(v *yaml.Node, key string, _ int) {
			if n, ok := d.integer(v, key, 1); ok {
				cfg.Concurrency = n
			}
		},
		"state_dir": func(v *yaml.Node, key string, _ int) {
			if p, ok := d.path(v, key); ok {
				cfg.StateDir = p
			}
		},
		"retry":       func(v *yaml.Node, key string, _ int) { d.retry(v, key, &cfg.Retry) },
		"maintenance": func(v *yaml.Node, key string, _ int) { d.maintenance(v, key, cfg.Location, &cfg.Maintenance) },
		"notify":      func(v *yaml.Node, key string, _ int) { d.notify(v, key, &cfg.Notify) },
		"prune":       func(v *yaml.Node, key string, _ int) { d.prune(v, key, &cfg.Prune) },
		"listen": func(v *yaml.Node, key string, _ int) {
			if s, ok := d.required(v, key, "write HOST:PORT, e.g. 127.0.0.1:9187"); ok {
				if err := validHostPort(s); err != nil {
					d.fail(v.Line, key, "write HOST:PORT, e.g. 127.0.0.1:9187", "%v", err)
					return
				}
				cfg.Listen = s
			}
		},
		"log_format": func(v *yaml.Node, key string, _ int) {
			if s, ok := d.str(v, key); ok {
				if s != "text" && s != "json" {
					d.fail(v.Line, key, "use text or json", "unknown log format %q", s)
					return
				}
				cfg.LogFormat = s
			}
		},
	})
	if !repoFound {
		d.fail(0, "repository", "add repository: {url: /var/lib/mbackup/repo, password_file: /etc/mbackup/repo.key}", "missing")
	}
	cfg.Defaults = resolveLayers(defaults, layer{})
	var drafts []*envDraft
	if envsNode != nil {
		drafts = d.environments(envsNode, "environments", defaults, cfg.Location)
	}
	d.crossCheck(cfg, drafts, o)
	for _, dr := range drafts {
		cfg.envs[dr.env.Name] = dr.env
	}
	d.setLookups(cfg)
	cfg.Warnings = append(cfg.Warnings, d.warnings(cfg)...)
	return cfg
}

func (d *decoder) timezone(v *yaml.Node, key string, cfg *Config) {
	s, ok := d.str(v, key)
	if !ok {
		return
	}
	cfg.Timezone = s
	if s == "" || s == "local" || s == "Local" {
		return
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		d.fail(v.Line, key, "use an IANA zone name such as Europe/Zurich, or UTC", "unknown time zone %q", s)
		return
	}
	cfg.Location = loc
}

func (d *decoder) repository(v *yaml.Node, key string, line int, r *Repository) {
	const urlFix = "use a folder, file:///PATH or s3:https://HOST[:PORT]/BUCKET[/PREFIX]"
	r.PackSize = DefaultPackSize
	r.Compression = DefaultCompression
	r.S3.AccessKey = SecretSource{Env: DefaultAccessKeyEnv, key: key + ".s3.access_key_env", line: line}
	r.S3.SecretKey = SecretSource{Env: DefaultSecretKeyEnv, key: key + ".s3.secret_key_env", line: line}
	var urlSeen bool
	var pwFile, pwEnv int
	ok := d.fields(v, key, map[string]handler{
		"url": func(v *yaml.Node, key string, _ int) {
			urlSeen = true
			s, ok := d.required(v, key, urlFix)
			if !ok {
				return
			}
			u, fix, err := parseRepositoryURL(s, d.dir)
			if err != nil {
				d.fail(v.Line, key, fix, "%v", err)
				return
			}
			r.URL = u
		},
		"password_file": func(v *yaml.Node, key string, line int) {
			pwFile = line
			d.secretFile(v, key, &r.Password)
		},
		"password_env": func(v *yaml.Node, key string, line int) {
			pwEnv = line
			d.secretEnv(v, key, &r.Password)
		},
		"s3": func(v *yaml.Node, key string, _ int) {
			d.fields(v, key, map[string]handler{
				"access_key_env": func(v *yaml.Node, key string, _ int) { d.secretEnv(v, key, &r.S3.AccessKey) },
				"secret_key_env": func(v *yaml.Node, key string, _ int) { d.secretEnv(v, key, &r.S3.SecretKey) },
				"region": func(v *yaml.Node, key string, _ int) {
					if s, ok := d.str(v, key); ok {
						r.S3.Region = s
					}
				},
			})
		},
		"pack_size": func(v *yaml.Node, key string, _ int) {
			s, ok := d.str(v, key)
			if !ok {
				return
			}
			n, err := ParseSize(s)
			if err != nil {
				d.fail(v.Line, key, "write a size such as 16MiB", "%v", err)
				return
			}
			if n < 4<<20 || n > 128<<20 {
				d.fail(v.Line, key, "use a size from 4MiB to 128MiB", "pack size %s is out of range", s)
				return
			}
			r.PackSize = n
		},
		"compression": func(v *yaml.Node, key string, _ int) {
			s, ok := d.str(v, key)
			if !ok {
				return
			}
			switch s {
			case "auto", "fastest", "better", "off":
				r.Compression = s
			default:
				d.fail(v.Line, key, "use auto, fastest, better or off", "unknown compression %q", s)
			}
		},
	})
	if !ok {
		return
	}
	if !urlSeen {
		d.fail(line, key, "add url: "+urlFix, "missing url")
	}
	d.exactlyOne(line, key, "password_file", pwFile, "password_env", pwEnv, "set password_file: /etc/mbackup/repo.key or password_env: MBACKUP_PASSWORD")
}

// exactlyOne reports a section that sets both or neither of two
// alternatives; aLine and bLine are the lines of the keys, 0 when absent.
func (d *decoder) exactlyOne(line int, key, a string, aLine int, b string, bLine int, fix string) {
	switch {
	case aLine == 0 && bLine == 0:
		d.fail(line, key, fix, "missing %s or %s", a, b)
	case aLine != 0 && bLine != 0:
		d.fail(max(aLine, bLine), key, "keep only one of them", "both %s and %s are set", a, b)
	}
}

func (d *decoder) jelastic(v *yaml.Node, key string, line int) *Jelastic {
	j := &Jelastic{}
	var urlSeen bool
	var tokFile, tokEnv int
	ok := d.fields(v, key, map[string]handler{
		"url": func(v *yaml.Node, key string, _ int) {
			urlSeen = true
			if s, ok := d.required(v, key, "write the API base, e.g. https://app.example-hoster.ch/1.0"); ok {
				if err := checkHTTPURL(s); err != nil {
					d.fail(v.Line, key, "write the API base, e.g. https://app.example-hoster.ch/1.0", "%v", err)
					return
				}
				j.URL = s
			}
		},
		"token_env": func(v *yaml.Node, key string, line int) {
			tokEnv = line
			d.secretEnv(v, key, &j.Token)
		},
		"token_file": func(v *yaml.Node, key string, line int) {
			tokFile = line
			d.secretFile(v, key, &j.Token)
		},
	})
	if !ok {
		return nil
	}
	if !urlSeen {
		d.fail(line, key, "add url: https://app.example-hoster.ch/1.0", "missing url")
	}
	d.exactlyOne(line, key, "token_env", tokEnv, "token_file", tokFile, "set token_env: JELASTIC_TOKEN or token_file: PATH")
	return j
}

func (d *decoder) retry(v *yaml.Node, key string, r *Retry) {
	d.fields(v, key, map[string]handler{
		"attempts": func(v *yaml.Node, key string, _ int) {
			if n, ok := d.integer(v, key, 1); ok {
				r.Attempts = n
			}
		},
		"delay": func(v *yaml.Node, key string, _ int) {
			if dur, ok := d.duration(v, key); ok {
				r.Delay = dur
			}
		},
	})
}

func (d *decoder) maintenance(v *yaml.Node, key string, loc *time.Location, m *Maintenance) {
	d.fields(v, key, map[string]handler{
		"prune": func(v *yaml.Node, key string, _ int) {
			if s, ok := d.schedule(v, key, loc); ok {
				m.Prune = s
			}
		},
		"check": func(v *yaml.Node, key string, _ int) {
			if s, ok := d.schedule(v, key, loc); ok {
				m.Check = s
			}
		},
		"check_subset": func(v *yaml.Node, key string, _ int) {
			if p, ok := d.percent(v, key, true); ok {
				m.CheckSubset = p
			}
		},
	})
}

func (d *decoder) prune(v *yaml.Node, key string, p *Prune) {
	d.fields(v, key, map[string]handler{
		"max_unused": func(v *yaml.Node, key string, _ int) {
			if pct, ok := d.percent(v, key, false); ok {
				p.MaxUnused = pct
			}
		},
		"grace": func(v *yaml.Node, key string, _ int) {
			if dur, ok := d.duration(v, key); ok {
				p.Grace = dur
			}
		},
	})
}
