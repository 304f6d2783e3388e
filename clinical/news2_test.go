package clinical

import (
	"slices"
	"testing"
)

// Every band boundary of the RCP NEWS2 chart (2017), each side.
func TestNEWS2ChartBoundaries(t *testing.T) {
	tests := []struct {
		param string
		f     func(float64) int
		rows  [][2]float64 // value, points
	}{
		{"respiration rate", respRatePoints, [][2]float64{{0, 3}, {8, 3}, {9, 1}, {11, 1}, {12, 0}, {20, 0}, {21, 2}, {24, 2}, {25, 3}, {60, 3}}},
		{"SpO2 scale 1", spo2Scale1Points, [][2]float64{{70, 3}, {91, 3}, {92, 2}, {93, 2}, {94, 1}, {95, 1}, {96, 0}, {100, 0}}},
		{"SpO2 scale 2 on air", func(v float64) int { return spo2Scale2Points(v, false) },
			[][2]float64{{70, 3}, {83, 3}, {84, 2}, {85, 2}, {86, 1}, {87, 1}, {88, 0}, {92, 0}, {93, 0}, {100, 0}}},
		{"SpO2 scale 2 on oxygen", func(v float64) int { return spo2Scale2Points(v, true) },
			[][2]float64{{83, 3}, {84, 2}, {85, 2}, {86, 1}, {87, 1}, {88, 0}, {92, 0}, {93, 1}, {94, 1}, {95, 2}, {96, 2}, {97, 3}, {100, 3}}},
		{"systolic BP", systolicPoints, [][2]float64{{50, 3}, {90, 3}, {91, 2}, {100, 2}, {101, 1}, {110, 1}, {111, 0}, {219, 0}, {220, 3}, {260, 3}}},
		{"pulse", pulsePoints, [][2]float64{{30, 3}, {40, 3}, {41, 1}, {50, 1}, {51, 0}, {90, 0}, {91, 1}, {110, 1}, {111, 2}, {130, 2}, {131, 3}, {180, 3}}},
		{"temperature", temperaturePoints, [][2]float64{{34, 3}, {35.0, 3}, {35.1, 1}, {36.0, 1}, {36.1, 0}, {38.0, 0}, {38.1, 1}, {39.0, 1}, {39.1, 2}, {41, 2}}},
	}
	for _, tt := range tests {
		for _, row := range tt.rows {
			if got := tt.f(row[0]); got != int(row[1]) {
				t.Errorf("%s %v: %d points, chart says %v", tt.param, row[0], got, row[1])
			}
		}
	}
}

func f(v float64) *float64 { return &v }
func b(v bool) *bool       { return &v }
func i(v int) *int         { return &v }

func normal() NEWS2Input {
	return NEWS2Input{RespRate: f(16), SpO2: f(97), OnOxygen: b(false), SystolicBP: f(120), Pulse: f(70), Consciousness: i(0), Temperature: f(37)}
}

func TestNEWS2Bands(t *testing.T) {
	tests := []struct {
		name  string
		mut   func(*NEWS2Input)
		total int
		band  string
	}{
		{"all normal", func(*NEWS2Input) {}, 0, BandLow},
		{"aggregate 4 is low", func(in *NEWS2Input) { in.RespRate = f(22); in.Pulse = f(115) }, 4, BandLow},
		{"single red score is low-medium", func(in *NEWS2Input) { in.Consciousness = i(1) }, 3, BandLowMedium},
		{"aggregate 5 is medium", func(in *NEWS2Input) { in.OnOxygen = b(true); in.SpO2 = f(93); in.Temperature = f(38.5) }, 5, BandMedium},
		{"aggregate 6 is medium", func(in *NEWS2Input) { in.OnOxygen = b(true); in.SpO2 = f(93); in.Pulse = f(115) }, 6, BandMedium},
		{"aggregate 7 is high", func(in *NEWS2Input) {
			in.OnOxygen = b(true)
			in.SpO2 = f(93)
			in.Pulse = f(115)
			in.Temperature = f(38.5)
		}, 7, BandHigh},
		{"red plus aggregate 5 is medium", func(in *NEWS2Input) { in.SystolicBP = f(85); in.RespRate = f(22) }, 5, BandMedium},
		{"hypercapnic 89% on air scores 0", func(in *NEWS2Input) { in.Hypercapnic = true; in.SpO2 = f(89) }, 0, BandLow},
		{"same 89% on scale 1 scores 3", func(in *NEWS2Input) { in.SpO2 = f(89) }, 3, BandLowMedium},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := normal()
			tt.mut(&in)
			s := ScoreNEWS2(in)
			if s.Total != tt.total || s.Band != tt.band || len(s.Missing) != 0 || len(s.Components) != 7 {
				t.Fatalf("got %+v, want total %d band %s", s, tt.total, tt.band)
			}
		})
	}
}

func TestNEWS2MissingParametersAreALowerBound(t *testing.T) {
	s := ScoreNEWS2(NEWS2Input{RespRate: f(26), Pulse: f(135), Consciousness: i(2)})
	if s.Total != 9 || s.Band != BandHigh {
		t.Fatalf("partial score %+v, want 9 high", s)
	}
	if !slices.Equal(s.Missing, []string{"spo2", "o2_supplement", "bp_systolic", "temperature"}) {
		t.Fatalf("missing %v", s.Missing)
	}
	if p, ok := s.Priority(); !ok || p != "high" {
		t.Fatalf("priority %v %v", p, ok)
	}
	if _, ok := ScoreNEWS2(NEWS2Input{}).Priority(); ok {
		t.Fatal("an empty input raised an alarm")
	}
}

// Fractional values score as the chart reads them: rounded to whole
// numbers (temperature to 0.1 °C) before banding. The raw values scored a
// band too low on the chart's boundaries (issue 13 item 7).
func TestNEWS2RoundsToTheChartsPrecision(t *testing.T) {
	for name, c := range map[string]struct {
		f    func(float64) int
		v    float64
		want int
	}{
		"SpO2 91.4":    {spo2Scale1Points, 91.4, 3},
		"35.04 °C":     {temperaturePoints, 35.04, 3},
		"HR 40.4":      {pulsePoints, 40.4, 3},
		"RR 8.4":       {respRatePoints, 8.4, 3},
		"SBP 90.4":     {systolicPoints, 90.4, 3},
		"SpO2 91.5":    {spo2Scale1Points, 91.5, 2},
		"35.05 °C":     {temperaturePoints, 35.05, 1},
		"39.04 °C":     {temperaturePoints, 39.04, 1},
		"39.06 °C":     {temperaturePoints, 39.06, 2},
		"scale 2 83.4": {func(v float64) int { return spo2Scale2Points(v, false) }, 83.4, 3},
	} {
		if got := c.f(c.v); got != c.want {
			t.Errorf("%s: %d points, the chart gives %d", name, got, c.want)
		}
	}
	// Every boundary, a little on either side of it: the value scores as
	// the whole number (tenth) it rounds to.
	rows := map[string]struct {
		f      func(float64) int
		bounds []float64
		step   float64
	}{
		"resp_rate":   {respRatePoints, []float64{8, 11, 20, 24}, 1},
		"spo2":        {spo2Scale1Points, []float64{91, 93, 95}, 1},
		"spo2 scale2": {func(v float64) int { return spo2Scale2Points(v, true) }, []float64{83, 85, 87, 92, 94, 96}, 1},
		"bp_systolic": {systolicPoints, []float64{90, 100, 110, 219}, 1},
		"heart_rate":  {pulsePoints, []float64{40, 50, 90, 110, 130}, 1},
		"temperature": {temperaturePoints, []float64{35.0, 36.0, 38.0, 39.0}, 0.1},
	}
	for name, r := range rows {
		for _, b := range r.bounds {
			for _, c := range []struct{ v, as float64 }{
				{b - 0.4*r.step, b}, {b + 0.4*r.step, b}, {b + 0.6*r.step, b + r.step}, {b - 0.6*r.step, b - r.step},
			} {
				if got, want := r.f(c.v), r.f(c.as); got != want {
					t.Errorf("%s %.2f: %d points, as %.1f: %d", name, c.v, got, c.as, want)
				}
			}
		}
	}
}
