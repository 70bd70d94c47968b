"""Buttons, modals and pages: what a member clicks."""
