"""Pure membership rules: seat placement, join rules, invite validity, projection ordering. No IO."""
