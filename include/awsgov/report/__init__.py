"""The weekly report: the week's data, views, delivery, rule catalogue, exceptions, threats, change history, posture,
exports.
"""
