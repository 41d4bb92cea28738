package httpapi

// Routes returns the pattern of every route the server registers, for
// the security matrix to check that it covers them all.
func (s *Server) Routes() []string {
	return append([]string(nil), s.patterns...)
}
