package blob

// Set is a set of IDs.
type Set map[ID]struct{}

// NewSet returns a set holding ids.
func NewSet(ids ...ID) Set {
	s := make(Set, len(ids))
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s
}

// Has reports whether id is in s.
func (s Set) Has(id ID) bool { _, ok := s[id]; return ok }

// Insert adds id to s.
func (s Set) Insert(id ID) { s[id] = struct{}{} }

// Delete removes id from s.
func (s Set) Delete(id ID) { delete(s, id) }

// List returns the members of s in sorted order.
func (s Set) List() []ID {
	ids := make([]ID, 0, len(s))
	for id := range s {
		ids = append(ids, id)
	}
	SortIDs(ids)
	return ids
}
