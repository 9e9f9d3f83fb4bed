"""Onboarding: trigger-form validation, planning, the StackSet baseline and its threat-detection options."""
