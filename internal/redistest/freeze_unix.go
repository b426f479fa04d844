//go:build unix

package redistest

import "syscall"

// Freeze suspends the server (SIGSTOP): connections stay open but nothing
// answers, as with a hung server or a network partition. The test's cleanup
// thaws it before killing it.
func (s *Server) Freeze() {
	s.tb.Helper()
	s.send(syscall.SIGSTOP)
	s.tb.Cleanup(s.Thaw)
}

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() {
	s.send(syscall.SIGCONT)
}

func (s *Server) send(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		if err := s.cmd.Process.Signal(sig); err != nil {
			s.tb.Errorf("signal redis-server: %v", err)
		}
	}
}
