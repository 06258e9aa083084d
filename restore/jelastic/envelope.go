package jelastic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// envelope is the decoded common part of every response plus the payload:
// the top-level fields merged with those of a "response":{...} wrapper.
type envelope struct {
	Result  int
	Error   string
	Reason  int
	Source  string
	Payload map[string]json.RawMessage
}

// decodeEnvelope parses a response body. It fails only when the body is not
// a JSON object with a result field; a non-zero result is not an error here.
func decodeEnvelope(body []byte) (*envelope, error) {
	top, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	env := &envelope{Payload: top}
	if err := env.readCommon(top, true); err != nil {
		return nil, err
	}
	// Scripted methods nest the real answer in "response":{...}. Merge it
	// into the payload (top level wins) and let its result count when the
	// top level says success.
	if raw, ok := lookupFold(top, "response"); ok {
		if inner, err := decodeObject(raw); err == nil {
			merged := make(map[string]json.RawMessage, len(top)+len(inner))
			for k, v := range inner {
				merged[k] = v
			}
			for k, v := range top {
				if !strings.EqualFold(k, "response") {
					merged[k] = v
				}
			}
			env.Payload = merged
			if env.Result == CodeOK {
				innerEnv := &envelope{}
				if err := innerEnv.readCommon(inner, false); err == nil && innerEnv.Result != CodeOK {
					env.Result, env.Error, env.Reason, env.Source = innerEnv.Result, innerEnv.Error, innerEnv.Reason, innerEnv.Source
				}
			}
		}
	}
	return env, nil
}

func (e *envelope) readCommon(obj map[string]json.RawMessage, requireResult bool) error {
	raw, ok := lookupFold(obj, "result")
	if !ok {
		if requireResult {
			return errors.New("no result field in response")
		}
		return nil
	}
	var r flexInt
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("result field: %w", err)
	}
	e.Result = int(r)
	if raw, ok := lookupFold(obj, "error"); ok {
		var s flexString
		if json.Unmarshal(raw, &s) == nil {
			e.Error = string(s)
		}
	}
	if raw, ok := lookupFold(obj, "reason"); ok {
		var n flexInt
		if json.Unmarshal(raw, &n) == nil {
			e.Reason = int(n)
		}
	}
	if raw, ok := lookupFold(obj, "source"); ok {
		var s flexString
		if json.Unmarshal(raw, &s) == nil {
			e.Source = string(s)
		}
	}
	return nil
}

// decodePayload decodes the merged payload into out.
func (e *envelope) decodePayload(out any) error {
	b, err := json.Marshal(e.Payload)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("response is not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return m, nil
}

// lookupFold finds a key, preferring an exact match over a case-insensitive one.
func lookupFold(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// flexInt decodes a JSON number, a numeric string or null.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*f = 0
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		u, err := strconv.Unquote(s)
		if err != nil {
			return fmt.Errorf("invalid number %s", s)
		}
		s = strings.TrimSpace(u)
		if s == "" {
			*f = 0
			return nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*f = flexInt(n)
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x != float64(int64(x)) {
		return fmt.Errorf("invalid integer %q", s)
	}
	*f = flexInt(int64(x))
	return nil
}

// flexBool decodes true/false, "true"/"false", 1/0 or null.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(s) {
	case "true", "1":
		*f = true
	case "false", "0", "", "null":
		*f = false
	default:
		return fmt.Errorf("invalid boolean %q", s)
	}
	return nil
}

// flexString decodes a string, a number (kept as its text) or null.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return fmt.Errorf("expected a string, got %.20s", b)
	default:
		*f = flexString(b)
	}
	return nil
}
