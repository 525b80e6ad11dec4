"""The domain: tokens, passwords and hash schemes, errors with stable codes, the email rule,
the clock type and the result types of the flows. No HTTP, no SQL."""
