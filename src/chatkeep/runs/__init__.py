"""Background runs: a generation that outlives its request, with a resumable event stream,
active-session / task-status views for front ends, and cancel from any process."""
