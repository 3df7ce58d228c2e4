"""The anti-CD38 rule set as data plus a pure evaluator. Imports nothing from labflow."""
