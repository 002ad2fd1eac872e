"""The basics every other package stands on: errors, the clock (and the test clock), durations,
logging, run ids, crash points and process identity. Imports nothing else of pipesched's."""
