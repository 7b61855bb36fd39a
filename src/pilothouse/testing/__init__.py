"""What Pilothouse ships for testing code that plugs into it: conformance suites for
every backend family (`pilothouse.testing.conformance`), the neutral vocabulary and base
class of wire-format fakes (`wire`), and serving a fake on loopback (`loopback`). The
test doubles for models are `pilothouse.models.testing`."""
