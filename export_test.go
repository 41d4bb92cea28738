package cloudimage

// WithPasswordCheck makes the service check passwords with check rather
// than bcrypt's compare, so that tests can count the checks.
func WithPasswordCheck(check func(hash, password []byte) error) IdentityOption {
	return func(s *IdentityService) { s.comparePassword = check }
}

// NewMemAuthFailures returns the in-memory AuthFailureStore, which the
// service falls back on, for the conformance suite.
func NewMemAuthFailures() AuthFailureStore { return newMemAuthFailures() }
