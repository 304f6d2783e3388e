package schemas

import "testing"

// Kind.Index is a hand-written switch: it must agree with Specs, which
// is what adding a kind changes.
func TestKindIndexMatchesSpecs(t *testing.T) {
	if len(Specs) != NumKinds {
		t.Fatalf("NumKinds is %d, Specs has %d", NumKinds, len(Specs))
	}
	for i, s := range Specs {
		if got := s.Kind.Index(); got != i {
			t.Errorf("%s.Index() = %d, its place in Specs is %d", s.Kind, got, i)
		}
	}
	if got := Kind("heart-rate").Index(); got != -1 {
		t.Errorf("unknown kind index %d, want -1", got)
	}
}
