package fsm

// names lets leases share the holder strings that repeat across them: a
// user holds seats on many machines and a product's process name is the
// same on every desktop. Each decoded command or snapshot item brings its
// own copy of such a string; at a million leases the copies cost tens of
// MB. Machines and host names are left alone: there is one per desktop,
// and the table would pin them after their leases end. The table stops
// growing at maxNames strings and never changes what a lease holds, only
// where the bytes live, so state stays the same on every node.
type names map[string]string

const maxNames = 1 << 16

func (n names) get(v string) string {
	if have, ok := n[v]; ok {
		return have
	}
	if len(n) < maxNames {
		n[v] = v
	}
	return v
}

// holder returns h with its shared parts taken from the table.
func (n names) holder(h Holder) Holder {
	h.User, h.Process = n.get(h.User), n.get(h.Process)
	return h
}

// restoredLease makes a lease read from a snapshot share the strings a
// lease made by Apply shares: its license's id, its feature's name and the
// holder strings in names.
func (s *state) restoredLease(l Lease) Lease {
	if lic, ok := s.licenses[l.LicenseID]; ok {
		l.LicenseID = lic.ID
	}
	l.Feature = s.names.get(l.Feature)
	l.Holder = s.names.holder(l.Holder)
	return l
}

// restoredRequest makes a remembered request read from a snapshot share
// the strings of its lease (when still live) and license, as Apply's do.
func (s *state) restoredRequest(r requestEntry) requestEntry {
	if ll, ok := s.leases[r.LeaseID]; ok && ll.RequestID == r.RequestID {
		r.LeaseID, r.RequestID = ll.ID, ll.RequestID
	}
	if lic, ok := s.licenses[r.LicenseID]; ok {
		r.LicenseID = lic.ID
	}
	return r
}

// restoredEnded shares an ended lease's license id with its license.
func (s *state) restoredEnded(e endedLease) endedLease {
	if lic, ok := s.licenses[e.LicenseID]; ok {
		e.LicenseID = lic.ID
	}
	return e
}
