package jelasticsim

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mbackup/mbackup/restore/jelastic"
)

// params holds request parameters by lower-cased name; the platform's
// clients disagree on spelling (nodeId, nodeid), so names match
// case-insensitively.
type params map[string]string

// readParams merges the form body (url-encoded or multipart) and the query
// string; a body value wins over a query value of the same name.
func readParams(w http.ResponseWriter, r *http.Request) (params, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(maxRequestBytes)
	} else {
		err = r.ParseForm()
	}
	p := params{}
	add := func(vals map[string][]string) {
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			lk := strings.ToLower(k)
			if _, seen := p[lk]; !seen && len(vals[k]) > 0 {
				p[lk] = vals[k][0]
			}
		}
	}
	add(r.PostForm)
	if r.MultipartForm != nil {
		add(r.MultipartForm.Value)
	}
	add(r.URL.Query())
	return p, err
}

func (p params) get(name string) string { return p[strings.ToLower(name)] }

// require returns a non-empty parameter or the platform's error 3.
func (p params) require(name string) (string, error) {
	v := p.get(name)
	if v == "" {
		return "", apiErr(jelastic.CodeInvalidParameter, "invalid parameter [%s]: required", name)
	}
	return v, nil
}

func (p params) bool(name string) bool {
	b, _ := strconv.ParseBool(p.get(name))
	return b
}
