"""The core every workflow stands on: AWS access, the store and its tables, settings, accounts, owners, mail,
rendering.
"""
