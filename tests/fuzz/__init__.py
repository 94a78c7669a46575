"""Property-based and fuzz tests of everything that takes input from outside: configs, REST, gRPC."""
