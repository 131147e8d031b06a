"""trialkit.api"""
