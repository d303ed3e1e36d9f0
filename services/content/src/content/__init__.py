"""Meadow content service: Posts, schedules, comments, polls, check-ins, lotteries and webhook delivery."""
