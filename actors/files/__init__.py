"""File channels: partners' folders polled, complete files taken once, handed to the file intake."""
