"""Speech recognition, language model and speech synthesis engines, and where their files come from.

Importing this package loads nothing: engines load their weights when constructed.
"""
