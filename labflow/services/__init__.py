"""Use cases. Each public function that changes data ends in exactly one commit."""
