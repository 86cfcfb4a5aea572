"""What makes the voice loop an assistant: instant commands, tools, personas with their own
files, notes and saved sessions. Pure dialog logic: it knows nothing of audio or stages."""
