"""Audits a person does by eye: is what the generator calls legible legible to a person?"""
