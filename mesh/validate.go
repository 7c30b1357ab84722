package mesh

// ValidateTarget checks a peer address given as HOST or HOST:PORT, as
// Node.Connect would, so that command lines can reject typos early.
func ValidateTarget(s string, defaultPort int) error {
	_, err := normalizeTarget(s, defaultPort)
	return err
}
