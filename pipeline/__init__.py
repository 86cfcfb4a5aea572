"""The conversation as streaming stages: frames, stages, turn-taking, dialog, replay and the CLI."""
