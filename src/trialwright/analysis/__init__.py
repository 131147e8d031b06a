"""trialwright.analysis"""
