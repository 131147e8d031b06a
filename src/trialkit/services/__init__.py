"""trialkit.services"""
