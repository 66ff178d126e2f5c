"""The command line: click commands that parse, call the pipeline, render and exit."""
